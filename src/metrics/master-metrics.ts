/**
 * The master's metrics, apart from the master loop: it is told of starts, exits, reloads
 * and heartbeats, and asks the master for its current picture (`MasterView`) only when
 * /metrics, /readyz or `corral status` is asked. Nothing here waits on a worker.
 */
import type { WorkerFigures } from '../ipc/messages.js';
import type { MasterPhase } from '../master/states.js';
import { FiguresStore, type WorkerRef } from './aggregate.js';
import { DURATION_BUCKETS, EXIT_REASONS, LONG_LIVED_BUCKETS, LONG_LIVED_KINDS, METRICS, PROXY_REJECT_REASONS, type ExitReason, type MetricName, type WorkerMetricState } from './definitions.js';
import { liveness, readiness, type HealthAnswer } from './health.js';
import { ListenQueues, type QueueFigures } from './listen-queue.js';
import { histogramSamples, renderFamily, type Sample } from './text.js';
import type { TlsFigures } from '../tls/keeper.js';

export interface WorkerView extends WorkerRef {
  readonly pid: number;
  /** booting, ready, retiring (serving until its replacement is ready), draining, dead. */
  readonly state: string;
  /** Monotonic ms (performance.now). */
  readonly spawnedAt: number;
  readonly lastCheckin: number;
  readonly rss: number;
  readonly inflight: number;
}

export interface MasterView {
  phase: MasterPhase;
  /** The serving generation's number (0 before the first serves). */
  generation: number;
  /** Workers the serving (or, at start, the booting) generation should have. */
  desired: number;
  serving: { ready: number; target: number } | undefined;
  lastReload: string;
  /** Now and when the master loop last ran, on the master's monotonic clock (ms). */
  now: number;
  lastTickAt: number;
  workers: readonly WorkerView[];
  listeners: ReadonlyArray<{ label: string; fd: number }>;
  backlog: number;
  /** During a shutdown delay: how long until the drain starts. */
  drainInMs?: number | undefined;
  /** The certificate TLS listeners serve (absent: no TLS). */
  tls?: TlsFigures | undefined;
  /** The range of workers, the scaling decisions counted so far, and why the count is what it is. */
  scaling?: {
    min: number;
    max: number;
    decisions: ReadonlyArray<{ direction: string; reason: string; count: number }>;
    why: string;
  } | undefined;
}

export interface StatusDoc {
  master: {
    pid: number; uptimeS: number; phase: MasterPhase; generation: number; workersDesired: number; lastReload: string; requests: number;
    /** The range of workers and why the count is what it is; absent in the answer of a master older than them. */
    workersMin?: number; workersMax?: number; scaling?: string;
  };
  listeners: Array<{ label: string; queue: number | null; limit: number | null }>;
  workers: Array<{
    slot: number; pid: number; generation: number; state: string; uptimeS: number; requests: number; inflight: number;
    rssBytes: number; eventLoopDelayS: number | null; lastCheckinS: number;
    /** Open upgraded connections and event streams; absent in the answer of a master older than them. */
    websockets?: number; streams?: number;
    /** Share of its last heartbeat interval its event loop was busy (0..1); absent from an older master or worker. */
    loopBusy?: number;
  }>;
}

function metricState(state: string): WorkerMetricState | undefined {
  if (state === 'booting') return 'booting';
  if (state === 'ready' || state === 'retiring') return 'ready';
  if (state === 'draining') return 'draining';
  return undefined;
}

function family(name: MetricName, samples: readonly Sample[]): string {
  const d = METRICS[name];
  return renderFamily(name, d.type, d.help, samples);
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class MasterMetrics {
  readonly figures = new FiguresStore();
  private starts = 0;
  private readonly exits = new Map<ExitReason, number>(EXIT_REASONS.map((r) => [r, 0]));
  private readonly reloads = { ok: 0, failed: 0 };
  private readonly queues = new ListenQueues();
  private startedAt: number | undefined;

  constructor(
    private readonly view: () => MasterView,
    private readonly build: { version: string; node: string } = { version: 'unknown', node: process.version },
  ) {}

  // ---- what the master tells ----------------------------------------------------------

  /** Counts from the master's start: call once when it starts. */
  masterStarted(now: number): void {
    this.startedAt = now;
  }

  workerStarted(): void {
    this.starts++;
  }

  workerReported(w: WorkerRef, f: WorkerFigures): void {
    this.figures.update(w, f);
  }

  workerExited(w: WorkerRef, reason: ExitReason): void {
    this.figures.retire(w);
    this.exits.set(reason, (this.exits.get(reason) ?? 0) + 1);
  }

  reloadFinished(ok: boolean): void {
    this.reloads[ok ? 'ok' : 'failed']++;
  }

  // ---- what is asked ------------------------------------------------------------------

  live(): HealthAnswer {
    const v = this.view();
    return liveness(v.lastTickAt, v.now);
  }

  ready(): HealthAnswer {
    const v = this.view();
    return readiness({ phase: v.phase, serving: v.serving, drainInMs: v.drainInMs });
  }

  listenQueues(v: MasterView = this.view()): Map<string, QueueFigures> {
    return this.queues.read(v.listeners, v.backlog);
  }

  /** corral's own families (the HTTP ones and corral_*), in the exposition format. */
  text(): string {
    const v = this.view();
    const http: Sample[] = [];
    for (const t of this.figures.http()) {
      http.push(...histogramSamples('http_server_request_duration_seconds', DURATION_BUCKETS, t.counts, t.sum, { http_request_method: t.method, http_response_status_code: t.status }));
    }
    const byState = new Map<WorkerMetricState, number>([['booting', 0], ['ready', 0], ['draining', 0]]);
    let active = 0;
    for (const w of v.workers) {
      const s = metricState(w.state);
      if (!s) continue;
      byState.set(s, byState.get(s)! + 1);
      active += w.inflight;
    }
    const owners = this.figures.slotOwners();
    const bySlot = new Map(v.workers.map((w) => [w as WorkerRef, w]));
    const memory: Sample[] = [];
    const eld: Sample[] = [];
    const elu: Sample[] = [];
    for (const [slot, ref] of owners) {
      const w = bySlot.get(ref);
      if (w) memory.push({ labels: { slot }, value: w.rss });
      const f = this.figures.figuresOf(ref);
      if (f) eld.push({ labels: { slot }, value: f.eld });
      if (f?.elu !== undefined) elu.push({ labels: { slot }, value: f.elu });
    }
    const sc = v.scaling;
    const open: Sample[] = [];
    for (const [slot, o] of this.figures.longLivedOpen()) {
      for (const kind of LONG_LIVED_KINDS) open.push({ labels: { kind, slot }, value: o[kind] });
    }
    const ll = this.figures.longLived();
    const durations = ll.durations.flatMap((d) => histogramSamples('corral_long_lived_connection_duration_seconds', LONG_LIVED_BUCKETS, d.counts, d.sum, { kind: d.kind }));
    const closes = ll.closes.map((c) => ({ labels: { kind: c.kind, closed_by: c.by }, value: c.count }));
    const queues = this.listenQueues(v);
    const rejected = this.figures.proxyRejected();
    const tls = v.tls;
    const tlsFamilies = tls ? [
      family('corral_tls_certificate_expiry_timestamp_seconds', tls.listeners.map((listener) => ({ labels: { listener, subject: tls.subject, serial: tls.serial }, value: tls.notAfter }))),
      family('corral_tls_certificate_swaps_total', [{ labels: { result: 'ok' }, value: tls.swaps.ok }, { labels: { result: 'refused' }, value: tls.swaps.refused }]),
    ] : [];
    return [
      family('http_server_request_duration_seconds', http),
      family('http_server_active_requests', [{ value: active }]),
      family('corral_workers', [...byState].map(([state, value]) => ({ labels: { state }, value }))),
      family('corral_workers_desired', [{ value: v.desired }]),
      family('corral_workers_min', sc ? [{ value: sc.min }] : []),
      family('corral_workers_max', sc ? [{ value: sc.max }] : []),
      family('corral_scaling_decisions_total', (sc?.decisions ?? []).map((d) => ({ labels: { direction: d.direction, reason: d.reason }, value: d.count }))),
      family('corral_worker_starts_total', [{ value: this.starts }]),
      family('corral_worker_exits_total', [...this.exits].map(([reason, value]) => ({ labels: { reason }, value }))),
      family('corral_proxy_protocol_rejected_total', PROXY_REJECT_REASONS.map((reason) => ({ labels: { reason }, value: rejected.get(reason) ?? 0 }))),
      family('corral_reloads_total', [{ labels: { result: 'ok' }, value: this.reloads.ok }, { labels: { result: 'failed' }, value: this.reloads.failed }]),
      family('corral_generation', [{ value: v.generation }]),
      family('corral_worker_memory_bytes', memory),
      family('corral_worker_eventloop_delay_seconds', eld),
      family('corral_worker_eventloop_utilization', elu),
      family('corral_long_lived_connections', open),
      family('corral_long_lived_connection_duration_seconds', durations),
      family('corral_long_lived_closes_total', closes),
      family('corral_listen_queue_length', [...queues].map(([listener, q]) => ({ labels: { listener }, value: q.length }))),
      family('corral_listen_queue_limit', [...queues].map(([listener, q]) => ({ labels: { listener }, value: q.limit }))),
      ...tlsFamilies,
      family('corral_build_info', [{ labels: { version: this.build.version, node: this.build.node }, value: 1 }]),
    ].join('');
  }

  /** The app's own prom-client metrics, merged over workers. */
  appText(): string {
    return this.figures.app().map((f) => renderFamily(f.name, f.type, f.help, f.samples)).join('');
  }

  /** The live picture for `corral status`. */
  status(): StatusDoc {
    const v = this.view();
    const now = v.now;
    this.startedAt ??= now;
    const queues = this.listenQueues(v);
    const s = (ms: number) => round3(Math.max(0, ms) / 1000);
    return {
      master: {
        pid: process.pid, uptimeS: s(now - this.startedAt), phase: v.phase, generation: v.generation,
        workersDesired: v.desired, lastReload: v.lastReload, requests: this.figures.totalRequests(),
        ...(v.scaling ? { workersMin: v.scaling.min, workersMax: v.scaling.max, scaling: v.scaling.why } : {}),
      },
      listeners: v.listeners.map((l) => ({ label: l.label, queue: queues.get(l.label)?.length ?? null, limit: queues.get(l.label)?.limit ?? null })),
      workers: v.workers
        .filter((w) => w.state !== 'dead')
        .map((w) => {
          const f = this.figures.figuresOf(w);
          return {
            slot: w.slot, pid: w.pid, generation: w.gen, state: w.state, uptimeS: s(now - w.spawnedAt),
            requests: f?.requests ?? 0, inflight: w.inflight, rssBytes: w.rss, eventLoopDelayS: f ? f.eld : null,
            lastCheckinS: s(now - w.lastCheckin), websockets: f?.longLived?.websockets ?? 0, streams: f?.longLived?.streams ?? 0,
            ...(f?.elu !== undefined ? { loopBusy: f.elu } : {}),
          };
        })
        .sort((a, b) => a.slot - b.slot || a.generation - b.generation),
    };
  }
}
