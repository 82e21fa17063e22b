/**
 * What a worker measures for the master's /metrics and `corral status`: plain counters
 * updated once per request (no allocation once a method+status pair has been seen), the
 * event-loop delay, and the app's own prom-client registry if it has one. Everything is
 * cumulative and sent with the heartbeat, so a lost or late heartbeat never double-counts.
 */
import { createRequire } from 'node:module';
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { DURATION_BUCKETS, KNOWN_METHODS, OTHER_METHOD } from '../metrics/definitions.js';
import type { AppMetricFamily, HttpSeries, LongLivedFigures, WorkerFigures } from '../ipc/messages.js';

const NB = DURATION_BUCKETS.length;
/** Per series: NB bucket counts, the +Inf count, then the sum of durations. */
const SERIES_LEN = NB + 2;
const METHOD_INDEX = new Map<string, number>(KNOWN_METHODS.map((m, i) => [m, i]));
const METHOD_NAMES: readonly string[] = [...KNOWN_METHODS, OTHER_METHOD];
const OTHER_INDEX = KNOWN_METHODS.length;

/** Request counts and the duration histogram, keyed by method index * 1000 + status. */
export class RequestMetrics {
  requests = 0;
  private readonly series = new Map<number, Float64Array>();

  /** `histogram`: metrics are on (the master has a metrics listener). */
  constructor(readonly histogram: boolean) {}

  /**
   * Called once per request, where its access line is produced. A long-lived one (a
   * WebSocket, an event stream) is counted but kept out of the duration histogram: its hours
   * would drown the requests' latencies, and it has a histogram of its own.
   */
  record(method: string | undefined, status: number, seconds: number, longLived = false): void {
    this.requests++;
    if (!this.histogram || longLived) return;
    const m = (method === undefined ? undefined : METHOD_INDEX.get(method)) ?? OTHER_INDEX;
    const key = m * 1000 + (status >= 0 && status < 1000 ? status | 0 : 0);
    let s = this.series.get(key);
    if (s === undefined) {
      s = new Float64Array(SERIES_LEN);
      this.series.set(key, s);
    }
    let i = 0;
    while (i < NB && seconds > DURATION_BUCKETS[i]!) i++;
    s[i]!++;
    s[NB + 1]! += seconds;
  }

  /** Every series, cumulative since the worker started (small: one per method+status seen). */
  snapshot(): HttpSeries[] | undefined {
    if (!this.histogram) return undefined;
    const out: HttpSeries[] = [];
    for (const [key, s] of this.series) {
      out.push([METHOD_NAMES[Math.floor(key / 1000)]!, key % 1000, Array.from(s.subarray(0, NB + 1)), s[NB + 1]!]);
    }
    return out;
  }
}

/** The sampling timer's period (ms); perf_hooks reports whole periods, so it is subtracted. */
const ELD_RESOLUTION_MS = 10;

/** The event-loop delay (perf_hooks), read and reset at each heartbeat. */
export class EventLoopDelay {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });

  constructor() {
    this.h.enable();
  }

  /** 99th percentile since the last call, in seconds. */
  take(): number {
    const p = this.h.count > 0 ? Math.max(0, this.h.percentile(99) / 1e6 - ELD_RESOLUTION_MS) / 1000 : 0;
    this.h.reset();
    return p;
  }

  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();

  /**
   * The share of the time since the last call that the event loop was busy (0..1): what
   * the master scales on, as the delay alone cannot tell a saturated worker from one slow
   * request at a quiet time.
   */
  utilization(): number {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, this.lastElu).utilization;
    this.lastElu = now;
    return Number.isFinite(u) ? Math.round(u * 1000) / 1000 : 0;
  }
}

interface PromRegistry {
  getMetricsAsJSON(): Promise<AppMetricFamily[]> | AppMetricFamily[];
}

/** How often the app's registry is read at most. */
const APP_METRICS_MS = 2000;

/**
 * The app's own prom-client default registry. prom-client is looked up from the app's
 * directory, as the app's own `import 'prom-client'` resolves it, and used only once the
 * app has loaded it (it is never loaded on the app's behalf). Sent only when changed.
 */
export class AppMetrics {
  private path: string | null | undefined;
  private readonly req: NodeJS.Require;
  private lastAt = -Infinity;
  private lastJson = '';
  private busy = false;
  private ready: AppMetricFamily[] | undefined;

  constructor(appFile: string, private readonly onError: (err: unknown) => void = () => {}) {
    this.req = createRequire(appFile);
  }

  private registry(): PromRegistry | undefined {
    if (this.path === undefined) {
      try {
        this.path = this.req.resolve('prom-client');
      } catch {
        this.path = null; // the app has no prom-client: nothing to do, ever
      }
    }
    if (this.path === null || !this.req.cache[this.path]) return undefined;
    return (this.req.cache[this.path]!.exports as { register?: PromRegistry }).register;
  }

  /** Starts a read when one is due; returns the families read since the last call, if changed. */
  poll(now: number): AppMetricFamily[] | undefined {
    const out = this.ready;
    this.ready = undefined;
    if (this.busy || now - this.lastAt < APP_METRICS_MS || this.path === null) return out;
    this.lastAt = now;
    const reg = this.registry();
    if (!reg) return out;
    this.busy = true;
    Promise.resolve()
      .then(() => reg.getMetricsAsJSON())
      .then((families) => {
        const slim = families.map((f) => ({ name: f.name, help: f.help, type: f.type, values: f.values }));
        const json = JSON.stringify(slim);
        if (json !== this.lastJson) {
          this.lastJson = json;
          this.ready = slim;
        }
      }, this.onError)
      .finally(() => (this.busy = false));
    return out;
  }
}

/**
 * The long-lived figures worth a heartbeat's bytes: none while nothing is open and nothing
 * ever closed (most apps), and only the open counts when metrics are off (`corral status`
 * shows those; the closes and durations are for /metrics alone).
 */
export function longLivedToSend(f: LongLivedFigures, metrics: boolean): LongLivedFigures | undefined {
  if (!metrics) return f.websockets > 0 || f.streams > 0 ? { websockets: f.websockets, streams: f.streams, closed: [], durations: [] } : undefined;
  return f.websockets > 0 || f.streams > 0 || f.closed.length > 0 || f.durations.length > 0 ? f : undefined;
}

/** The figures of one heartbeat. */
export function figures(req: RequestMetrics, eld: EventLoopDelay, app: AppMetrics | undefined, longLived: LongLivedFigures, now: number): WorkerFigures {
  const f: WorkerFigures = { requests: req.requests, eld: eld.take(), elu: eld.utilization() };
  const http = req.snapshot();
  if (http) f.http = http;
  const families = app?.poll(now);
  if (families) f.app = families;
  const ll = longLivedToSend(longLived, req.histogram);
  if (ll) f.longLived = ll;
  return f;
}
