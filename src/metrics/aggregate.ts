/**
 * The master's memory of what workers measured. Each live worker's latest figures are
 * kept as they came (cumulative); when a worker exits, its counters and histograms are
 * folded into retired totals, so a sum never goes back — whatever killed the worker
 * (SIGKILL included: what it reported at its last heartbeat stays counted). Gauges are
 * per slot, from the worker serving that slot, and leave with the worker. Long-lived
 * connections are the same, with two differences: the open counts of a slot are summed
 * over its live workers, and what a worker still had open when it exited is counted closed.
 */
import type { AppMetricFamily, HttpSeries, LongLivedCloser, LongLivedFigures, LongLivedKind, ProxyRejectReason, WorkerFigures } from '../ipc/messages.js';
import { LONG_LIVED_CLOSERS, LONG_LIVED_KINDS, METRIC_NAMES } from './definitions.js';
import type { Labels, Sample } from './text.js';

/** A worker as the store knows it: its object identity is the key. */
export interface WorkerRef {
  readonly slot: number;
  readonly gen: number;
}

interface HttpTotals {
  method: string;
  status: number;
  counts: number[];
  sum: number;
}

interface AppFamily {
  name: string;
  help: string;
  type: string;
  samples: Sample[];
}

interface Live {
  seq: number;
  figures: WorkerFigures;
  app: AppMetricFamily[] | undefined;
}

interface AppAcc {
  help: string;
  type: string;
  values: Map<string, Sample>;
}

/** Families summed over workers (and kept after they exit); everything else is per slot. */
const SUMMED = new Set(['counter', 'histogram']);
const RESERVED = new Set<string>(METRIC_NAMES);

/** An app family that would clash with corral's own (or the master's process metrics) is left out. */
function isReservedName(name: string): boolean {
  return RESERVED.has(name) || name.startsWith('process_') || name.startsWith('nodejs_');
}

function sampleKey(name: string, labels: Labels | undefined): string {
  if (!labels) return name;
  const keys = Object.keys(labels).sort();
  return name + '\0' + keys.map((k) => `${k}=${labels[k]}`).join('\0');
}

function addHttp(into: Map<string, HttpTotals>, series: readonly HttpSeries[], sign = 1): void {
  for (const [method, status, counts, sum] of series) {
    const key = `${method} ${status}`;
    let t = into.get(key);
    if (!t) {
      t = { method, status, counts: new Array<number>(counts.length).fill(0), sum: 0 };
      into.set(key, t);
    }
    for (let i = 0; i < counts.length; i++) t.counts[i] = (t.counts[i] ?? 0) + sign * counts[i]!;
    t.sum += sign * sum;
  }
}

function addApp(into: Map<string, AppAcc>, families: readonly AppMetricFamily[], only: 'summed' | 'per-slot', slot?: number, sign = 1): void {
  for (const f of families) {
    if (isReservedName(f.name) || !Array.isArray(f.values)) continue;
    const summed = SUMMED.has(f.type);
    if (summed !== (only === 'summed')) continue;
    let acc = into.get(f.name);
    if (!acc) {
      acc = { help: f.help, type: f.type, values: new Map() };
      into.set(f.name, acc);
    } else if (acc.type !== f.type) {
      continue; // the app changed the metric's type across a reload: the first one seen wins
    }
    for (const v of f.values) {
      if (typeof v.value !== 'number') continue;
      const labels: Labels = slot === undefined ? { ...v.labels } : { ...v.labels, slot };
      const name = v.metricName ?? f.name;
      const key = sampleKey(name, labels);
      const had = acc.values.get(key);
      if (had && summed) had.value += sign * v.value;
      else acc.values.set(key, { name, labels, value: sign * v.value });
    }
  }
}

/** Long-lived closes by kind and closer, and the duration histogram by kind. */
interface LongLivedTotals {
  /** Keyed `kind closer`. */
  closed: Map<string, number>;
  durations: Map<LongLivedKind, { counts: number[]; sum: number }>;
}

const closeKey = (kind: LongLivedKind, by: LongLivedCloser) => `${kind} ${by}`;

const emptyLongLived = (): LongLivedTotals => ({ closed: new Map(), durations: new Map() });

/**
 * Adds a worker's long-lived figures (sign -1 takes them out). `died`: the worker is gone,
 * so what it still had open was cut with it and counts as closed, `forced` (its duration is
 * unknown: it stays out of the histogram).
 */
function addLongLived(into: LongLivedTotals, f: LongLivedFigures | undefined, sign: number, died: boolean): void {
  if (!f) return;
  const close = (kind: LongLivedKind, by: LongLivedCloser, n: number) => {
    if (n === 0) return;
    const key = closeKey(kind, by);
    into.closed.set(key, (into.closed.get(key) ?? 0) + sign * n);
  };
  for (const [kind, by, n] of f.closed) close(kind, by, n);
  if (died) {
    close('websocket', 'forced', f.websockets);
    close('stream', 'forced', f.streams);
  }
  for (const [kind, counts, sum] of f.durations) {
    let t = into.durations.get(kind);
    if (!t) {
      t = { counts: new Array<number>(counts.length).fill(0), sum: 0 };
      into.durations.set(kind, t);
    }
    for (let i = 0; i < counts.length; i++) t.counts[i] = (t.counts[i] ?? 0) + sign * counts[i]!;
    t.sum += sign * sum;
  }
}

function cloneLongLived(src: LongLivedTotals): LongLivedTotals {
  return { closed: new Map(src.closed), durations: new Map([...src.durations].map(([k, t]) => [k, { counts: [...t.counts], sum: t.sum }])) };
}

function cloneApp(src: Map<string, AppAcc>): Map<string, AppAcc> {
  const out = new Map<string, AppAcc>();
  for (const [name, a] of src) out.set(name, { help: a.help, type: a.type, values: new Map([...a.values].map(([k, s]) => [k, { ...s }])) });
  return out;
}

export class FiguresStore {
  private readonly live = new Map<WorkerRef, Live>();
  private seq = 0;
  private retiredRequests = 0;
  private readonly retiredHttp = new Map<string, HttpTotals>();
  private readonly retiredApp = new Map<string, AppAcc>();
  private readonly retiredLongLived = emptyLongLived();
  private readonly retiredProxyRejected = new Map<ProxyRejectReason, number>();
  /** What each exited worker contributed, for a heartbeat that arrives after its exit. */
  private readonly retiredFrom = new WeakMap<WorkerRef, Live>();

  /** A heartbeat's figures replace the worker's previous ones (the app's only when sent). */
  update(w: WorkerRef, f: WorkerFigures): void {
    const gone = this.retiredFrom.get(w);
    if (gone) {
      // Its last heartbeat came after its exit was handled: the totals take the newer figures.
      this.fold(gone, -1);
      const newer = { seq: gone.seq, figures: f, app: f.app ?? gone.app };
      this.fold(newer, 1);
      this.retiredFrom.set(w, newer);
      return;
    }
    const had = this.live.get(w);
    if (had) {
      had.figures = f;
      if (f.app) had.app = f.app;
    } else {
      this.live.set(w, { seq: this.seq++, figures: f, app: f.app });
    }
  }

  /** The worker exited: its counters and histograms join the retired totals. */
  retire(w: WorkerRef): void {
    const l = this.live.get(w);
    if (!l) return;
    this.live.delete(w);
    this.retiredFrom.set(w, l);
    this.fold(l, 1);
  }

  private fold(l: Live, sign: 1 | -1): void {
    this.retiredRequests += sign * l.figures.requests;
    if (l.figures.http) addHttp(this.retiredHttp, l.figures.http, sign);
    if (l.app) addApp(this.retiredApp, l.app, 'summed', undefined, sign);
    addLongLived(this.retiredLongLived, l.figures.longLived, sign, true);
    for (const [r, n] of Object.entries(l.figures.proxyRejected ?? {}) as Array<[ProxyRejectReason, number]>) {
      this.retiredProxyRejected.set(r, (this.retiredProxyRejected.get(r) ?? 0) + sign * n);
    }
  }

  /** Connections closed by PROXY protocol listeners, by reason, over every worker that ever ran. */
  proxyRejected(): Map<ProxyRejectReason, number> {
    const into = new Map(this.retiredProxyRejected);
    for (const l of this.live.values()) {
      for (const [r, n] of Object.entries(l.figures.proxyRejected ?? {}) as Array<[ProxyRejectReason, number]>) into.set(r, (into.get(r) ?? 0) + n);
    }
    return into;
  }

  figuresOf(w: WorkerRef): WorkerFigures | undefined {
    return this.live.get(w)?.figures;
  }

  /** Requests answered by every worker that ever ran. */
  totalRequests(): number {
    let n = this.retiredRequests;
    for (const l of this.live.values()) n += l.figures.requests;
    return n;
  }

  /** The request-duration histogram, summed over live and exited workers. */
  http(): HttpTotals[] {
    const into = new Map<string, HttpTotals>();
    for (const t of this.retiredHttp.values()) into.set(`${t.method} ${t.status}`, { ...t, counts: [...t.counts] });
    for (const l of this.live.values()) if (l.figures.http) addHttp(into, l.figures.http);
    return [...into.values()].sort((a, b) => (a.method === b.method ? a.status - b.status : a.method < b.method ? -1 : 1));
  }

  /**
   * Which worker speaks for each slot in per-slot gauges: during a reload or a recycle two
   * workers share a slot, and the newest generation (then the newest worker) is the one serving.
   */
  slotOwners(): Map<number, WorkerRef> {
    const best = new Map<number, { w: WorkerRef; seq: number }>();
    for (const [w, l] of this.live) {
      const b = best.get(w.slot);
      if (!b || w.gen > b.w.gen || (w.gen === b.w.gen && l.seq > b.seq)) best.set(w.slot, { w, seq: l.seq });
    }
    return new Map([...best].sort((a, b) => a[0] - b[0]).map(([slot, b]) => [slot, b.w]));
  }

  /**
   * Open WebSockets and streams per slot (the slots slotOwners() lists), summed over every
   * live worker of the slot: while an old worker drains its connections beside its
   * replacement, both hold real ones, and the sum over slots is every open one.
   */
  longLivedOpen(): Map<number, Record<LongLivedKind, number>> {
    const out = new Map<number, Record<LongLivedKind, number>>();
    for (const slot of this.slotOwners().keys()) out.set(slot, { websocket: 0, stream: 0 });
    for (const [w, l] of this.live) {
      const o = out.get(w.slot);
      const f = l.figures.longLived;
      if (!o || !f) continue;
      o.websocket += f.websockets;
      o.stream += f.streams;
    }
    return out;
  }

  private longLivedTotals(): LongLivedTotals {
    const into = cloneLongLived(this.retiredLongLived);
    for (const l of this.live.values()) addLongLived(into, l.figures.longLived, 1, false);
    return into;
  }

  /**
   * Closes of long-lived connections by every worker that ever ran, for every kind and
   * closer (0 included, so a rate has a start), and the duration histogram of each kind
   * that had a close.
   */
  longLived(): {
    closes: Array<{ kind: LongLivedKind; by: LongLivedCloser; count: number }>;
    durations: Array<{ kind: LongLivedKind; counts: number[]; sum: number }>;
  } {
    const t = this.longLivedTotals();
    return {
      closes: LONG_LIVED_KINDS.flatMap((kind) => LONG_LIVED_CLOSERS.map((by) => ({ kind, by, count: t.closed.get(closeKey(kind, by)) ?? 0 }))),
      durations: LONG_LIVED_KINDS.flatMap((kind) => {
        const d = t.durations.get(kind);
        return d ? [{ kind, counts: d.counts, sum: d.sum }] : [];
      }),
    };
  }

  /** The app's own metrics: counters and histograms summed, gauges (and summaries) per slot. */
  app(): AppFamily[] {
    const into = cloneApp(this.retiredApp);
    for (const l of this.live.values()) if (l.app) addApp(into, l.app, 'summed');
    for (const [slot, w] of this.slotOwners()) {
      const app = this.live.get(w)!.app;
      if (app) addApp(into, app, 'per-slot', slot);
    }
    return [...into].map(([name, a]) => ({ name, help: a.help, type: a.type, samples: [...a.values.values()] }));
  }
}
