/**
 * The master's side of a range of workers: it gathers an observation a few times a second
 * (the accept queues, each serving worker's latest heartbeat figures, RSS, the cgroup's
 * memory limit), asks `decide` (autoscale.ts) whether the count should change, and applies
 * the answer to the serving generation: a new count, and the newest slots drained with the
 * reason `scale-down`. TTIN and TTOU come through here too. Every decision is logged with its
 * reason and counted (corral_scaling_decisions_total); `explain` says why the count is what
 * it is, for `corral status`. A fixed count (min = max) costs nothing: nothing is sampled.
 */
import type { WorkerFigures } from '../ipc/messages.js';
import { cgroupMemoryLimit } from '../config/memory.js';
import { showRange, type WorkerRange } from '../config/worker-range.js';
import { decide, initialState, type Decision, type DecisionReason, type HoldReason, type Observation, type Rules, type ScalingState } from './autoscale.js';
import type { Generation } from './generation.js';
import type { WorkerHandle } from './worker-handle.js';

/** How often the load is looked at (ms): heartbeats come every second at most, the accept queue is read here. */
const SAMPLE_MS = 500;

/** What the scaler reads of the world besides the workers: faked in unit tests. */
export interface ScalingProbe {
  /** Connections waiting in the accept queues of the TCP listeners, summed; undefined when none can be read. */
  queued(): number | undefined;
  /** The cgroup's memory limit (bytes), or undefined. */
  memoryLimit(): number | undefined;
  /** The master's own RSS (bytes). */
  masterRss(): number;
}

/** The probe of a real master: the queues as /metrics reads them, the cgroup read once. */
export function realProbe(queues: () => ReadonlyMap<string, { length: number }>): ScalingProbe {
  let limit: { bytes: number } | undefined | null = null;
  return {
    queued() {
      const q = [...queues().values()];
      return q.length === 0 ? undefined : q.reduce((n, x) => n + x.length, 0);
    },
    memoryLimit() {
      if (limit === null) limit = cgroupMemoryLimit();
      return limit?.bytes;
    },
    masterRss: () => process.memoryUsage.rss(),
  };
}

type Direction = 'up' | 'down' | 'held';

/** Every series of corral_scaling_decisions_total, in exposition order. */
const DECISION_SERIES: ReadonlyArray<readonly [Direction, DecisionReason | HoldReason]> = [
  ['up', 'queue'], ['up', 'busy'], ['up', 'delay'], ['up', 'ttin'],
  ['down', 'idle'], ['down', 'ttou'],
  ['held', 'max'], ['held', 'memory'],
];

interface ScalingFigures {
  min: number;
  max: number;
  decisions: ReadonlyArray<{ direction: Direction; reason: string; count: number }>;
}

interface Log {
  info(line: string): void;
  warn(line: string): void;
}

const clock = () => new Date().toISOString().slice(11, 19);

export class Scaler {
  private state: ScalingState = initialState();
  /** The generation the state belongs to: a new one starts afresh. */
  private gen: Generation | undefined;
  private nextSample = 0;
  private readonly counts = new Map<string, number>(DECISION_SERIES.map(([d, r]) => [`${d}:${r}`, 0]));
  /** The last change of the count, as `corral status` tells it. */
  private last: string | undefined;

  constructor(
    private readonly probe: ScalingProbe,
    private readonly log: Log,
    private readonly figuresOf: (w: WorkerHandle) => WorkerFigures | undefined,
  ) {}

  /**
   * When the master loop must run next for a sample (Infinity for a fixed count). A sample
   * that is due but was not taken (a reload under way, a stop) is looked at again a period
   * later, so the loop never spins on it.
   */
  nextAt(gen: Generation | undefined, now: number): number {
    if (!gen || gen.min === gen.max) return Infinity;
    return this.nextSample > now ? this.nextSample : now + SAMPLE_MS;
  }

  /** A sample, when one is due, and its decision applied; `workers`: the generation's live workers. */
  run(now: number, gen: Generation, workers: readonly WorkerHandle[]): void {
    if (gen !== this.gen) {
      this.gen = gen;
      this.state = initialState();
    }
    if (gen.min === gen.max || now < this.nextSample) return;
    this.nextSample = now + SAMPLE_MS;
    const o = this.observe(now, gen, workers);
    const { state, decision } = decide(this.state, o, this.rules(gen));
    this.state = state;
    if (decision) this.apply(decision, now, gen, workers);
  }

  /** TTIN (+1) or TTOU (-1): the range shifts by one worker and the count with it. */
  signal(by: 1 | -1, now: number, gen: Generation, workers: readonly WorkerHandle[]): void {
    const from = gen.target;
    const range = showRange(gen);
    if (by < 0 && gen.target <= 1) return void this.log.info(`TTOU ignored: already at 1 worker`);
    gen.scale(by);
    this.state = initialState();
    const name = by > 0 ? 'TTIN' : 'TTOU';
    const shifted = range === showRange(gen) ? '' : `; range ${range} -> ${showRange(gen)} until the next reload`;
    this.count(by > 0 ? 'up' : 'down', by > 0 ? 'ttin' : 'ttou');
    this.last = `${name} at ${clock()}: ${from} -> ${gen.target}`;
    this.log.info(`${name}: workers ${from} -> ${gen.target}${shifted}`);
    if (by < 0) for (const w of workers) if (w.slot > gen.target) w.drain(now, { kind: 'scale-down', by: 'ttou' });
  }

  figures(gen: Generation | undefined, fallback: WorkerRange): ScalingFigures {
    return {
      min: gen?.min ?? fallback.min,
      max: gen?.max ?? fallback.max,
      decisions: DECISION_SERIES.map(([direction, reason]) => ({ direction, reason, count: this.counts.get(`${direction}:${reason}`) ?? 0 })),
    };
  }

  /** One line: the count, the range, and why the count is what it is. */
  explain(gen: Generation | undefined, now: number): string {
    if (!gen) return 'starting';
    const count = `${gen.target} worker(s)`;
    if (gen.min === gen.max) return `${count}, fixed${this.last ? ` (${this.last})` : ''}`;
    const s = this.state;
    const r = this.rules(gen);
    let why: string;
    if (s.held) why = `load above the workers (${s.pressure}), but ${s.held === 'max' ? 'the maximum is reached' : 'the memory limit holds no more'}`;
    else if (s.pressureSince !== undefined) why = `load above the workers (${s.pressure}) for ${((now - s.pressureSince) / 1000).toFixed(1)} s of ${r.upWindowMs / 1000} s`;
    else if (s.idleSince !== undefined) why = `one fewer would do for ${((now - s.idleSince) / 1000).toFixed(0)} s of ${r.idleMs / 1000} s`;
    else why = gen.target === gen.min ? 'at the minimum' : 'the load needs them';
    return `${count} in ${showRange(gen)}: ${why}${this.last ? `; last change: ${this.last}` : ''}`;
  }

  private rules(gen: Generation): Rules {
    const c = gen.config;
    return { upWindowMs: c.scaleUpWindow * 1000, idleMs: c.scaleIdleTimeout * 1000, busy: c.scaleUpBusy / 100 };
  }

  private observe(now: number, gen: Generation, workers: readonly WorkerHandle[]): Observation {
    const serving = workers.filter((w) => w.serving);
    const utilization: number[] = [];
    const delays: number[] = [];
    for (const w of serving) {
      const f = this.figuresOf(w);
      if (f?.elu !== undefined) utilization.push(f.elu);
      if (f) delays.push(f.eld);
    }
    return {
      now, target: gen.target, min: gen.min, max: gen.max,
      serving: serving.length, booting: workers.filter((w) => w.state === 'booting').length,
      queued: this.probe.queued(), utilization, delays,
      workersRss: workers.reduce((n, w) => n + w.rss, 0),
      largestRss: serving.reduce((n, w) => Math.max(n, w.rss), 0),
      masterRss: this.probe.masterRss(),
      memoryLimit: this.probe.memoryLimit(),
    };
  }

  private apply(d: Decision, now: number, gen: Generation, workers: readonly WorkerHandle[]): void {
    if (d.kind === 'hold') {
      this.count('held', d.reason);
      this.log[d.reason === 'memory' ? 'warn' : 'info'](`scale up held at ${gen.target} worker(s) (${d.reason}): ${d.detail}`);
      return;
    }
    const from = gen.target;
    gen.resize(d.to);
    this.count(d.kind, d.reason);
    this.last = `${d.kind} at ${clock()}: ${from} -> ${gen.target} (${d.reason})`;
    this.log.info(`scale ${d.kind}: workers ${from} -> ${gen.target} of ${showRange(gen)} (${d.reason}: ${d.detail})`);
    if (d.kind === 'down') for (const w of workers) if (w.slot > gen.target) w.drain(now, { kind: 'scale-down', by: 'idle' });
  }

  private count(direction: Direction, reason: string): void {
    const key = `${direction}:${reason}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}
