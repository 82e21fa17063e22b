/**
 * When a range of workers (`--workers 2..8`) should grow or shrink: a pure function of what
 * the master observed and its clock, so the rules are tested without a process.
 *
 * Up: the load outgrows the workers for `upWindowMs` without a break: connections wait in
 * the kernel's accept queue (no worker is free to accept them), or the workers' event loops
 * are busy beyond `busy` on average, or their delay is high while they are at least half
 * that busy (a short blip of either adds nothing). Several observations in a row are
 * needed, each one with the pressure; one without it starts the window again.
 *
 * Down: one worker fewer would have been enough for `idleMs`: nothing waits in the accept
 * queue and the event loops' busy time, summed, fits in one worker fewer at half of `busy`
 * (so that after the retirement the rest sit well below the bound that adds one again:
 * no flapping). Then the newest slot drains politely and the idle clock starts again.
 *
 * Never below min or above max; never up while a worker of the generation still boots (its
 * capacity is on the way); never up past what the cgroup's memory limit holds at the
 * measured RSS. Steps up double while the pressure lasts (1, 2, 4 ...), so a spike from a
 * night-time minimum reaches the peak in a few windows rather than one window per worker.
 */

/** What the master saw at one moment (see scaler.ts for where each figure comes from). */
export interface Observation {
  /** Monotonic ms. */
  now: number;
  /** The generation's count, its range, and how many of its workers serve or boot. */
  target: number;
  min: number;
  max: number;
  serving: number;
  booting: number;
  /** Connections waiting in the accept queues of the TCP listeners; undefined when none can be read. */
  queued: number | undefined;
  /** Event-loop utilization (0..1) of each serving worker that reported one. */
  utilization: readonly number[];
  /** 99th percentile of each serving worker's event-loop delay over its last interval (seconds). */
  delays: readonly number[];
  /** Bytes: every live worker's RSS summed, the largest serving worker's, and the master's own. */
  workersRss: number;
  largestRss: number;
  masterRss: number;
  /** The cgroup's memory limit in bytes; undefined without one. */
  memoryLimit: number | undefined;
}

export interface Rules {
  upWindowMs: number;
  idleMs: number;
  /** Mean event-loop utilization (0..1) above which the load outgrows the workers. */
  busy: number;
}

/** Event-loop delay (seconds, p99) that counts as pressure when the loops are half busy. */
const DELAY_BOUND_S = 0.1;
/** Share of the cgroup's memory limit left free for what RSS does not show (page cache, a reload's overlap). */
const MEMORY_HEADROOM = 0.1;

type UpReason = 'queue' | 'busy' | 'delay';
export type DecisionReason = UpReason | 'idle' | 'ttin' | 'ttou';
/** A scale-up the range or the memory limit refused, said once per episode. */
export type HoldReason = 'max' | 'memory';

export interface ScalingState {
  /** Since when the load has outgrown the workers without a break, and why (the first reason seen). */
  pressureSince: number | undefined;
  pressure: UpReason | undefined;
  /** Since when one worker fewer would have been enough. */
  idleSince: number | undefined;
  /** Workers added at the last step up, while the pressure lasted (0: none since it ended). */
  lastStep: number;
  /** The hold already said in this episode, so it is said once. */
  held: HoldReason | undefined;
}

export function initialState(): ScalingState {
  return { pressureSince: undefined, pressure: undefined, idleSince: undefined, lastStep: 0, held: undefined };
}

export type Decision =
  | { kind: 'up'; to: number; reason: UpReason; detail: string }
  | { kind: 'down'; to: number; reason: 'idle'; detail: string }
  | { kind: 'hold'; reason: HoldReason; detail: string };

const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const pct = (x: number) => `${Math.round(x * 100)} %`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** What outgrows the workers in this observation, with the figure that says so, if anything. */
function pressureOf(o: Observation, r: Rules): { reason: UpReason; figure: string } | undefined {
  if (o.queued !== undefined && o.queued > 0) return { reason: 'queue', figure: `${o.queued} connection(s) waiting in the accept queue` };
  const u = mean(o.utilization);
  if (o.utilization.length > 0 && u >= r.busy) return { reason: 'busy', figure: `event loops ${pct(u)} busy (bound ${pct(r.busy)})` };
  const d = mean(o.delays);
  if (o.delays.length > 0 && d >= DELAY_BOUND_S && u >= r.busy / 2) return { reason: 'delay', figure: `event-loop delay ${(d * 1000).toFixed(0)} ms at ${pct(u)} busy` };
  return undefined;
}

/** One worker fewer would do: nothing waits, and the busy time fits in the others at half the bound. */
function idleNow(o: Observation, r: Rules): boolean {
  if (o.target <= o.min || o.booting > 0 || o.serving < o.target) return false;
  if (o.queued !== undefined && o.queued > 0) return false;
  if (o.utilization.length < o.serving) return false;
  return sum(o.utilization) <= (r.busy / 2) * (o.target - 1);
}

/** Workers the memory limit holds: what runs now, plus each new one at the largest RSS measured. */
export function memoryRoom(o: Observation): number {
  if (o.memoryLimit === undefined || o.largestRss <= 0) return Infinity;
  const free = o.memoryLimit * (1 - MEMORY_HEADROOM) - o.masterRss - o.workersRss;
  return Math.max(0, Math.floor(free / o.largestRss));
}

/** The next state and, when the count should change (or a wanted change cannot be made), the decision. */
export function decide(s: ScalingState, o: Observation, r: Rules): { state: ScalingState; decision: Decision | undefined } {
  const p = pressureOf(o, r);
  const next: ScalingState = { ...s };
  if (!p) {
    next.pressureSince = undefined;
    next.pressure = undefined;
    next.lastStep = 0;
    next.held = undefined;
  } else {
    next.idleSince = undefined;
    // A worker on its way is capacity coming: wait for it before measuring again.
    if (o.booting > 0) return { state: { ...next, pressureSince: undefined, pressure: undefined }, decision: undefined };
    next.pressureSince ??= o.now;
    next.pressure ??= p.reason;
    if (o.now - next.pressureSince >= r.upWindowMs) return up(next, o, p);
    return { state: next, decision: undefined };
  }
  if (!idleNow(o, r)) return { state: { ...next, idleSince: undefined }, decision: undefined };
  next.idleSince ??= o.now;
  if (o.now - next.idleSince < r.idleMs) return { state: next, decision: undefined };
  const busy = sum(o.utilization);
  return {
    state: { ...next, idleSince: o.now },
    decision: { kind: 'down', to: o.target - 1, reason: 'idle', detail: `for ${secs(o.now - next.idleSince)} the load fitted in ${o.target - 1} worker(s) (event loops ${pct(busy)} busy in all)` },
  };
}

function up(s: ScalingState, o: Observation, p: { reason: UpReason; figure: string }): { state: ScalingState; decision: Decision | undefined } {
  const held = (reason: HoldReason, detail: string) => ({
    state: { ...s, held: reason },
    decision: s.held === reason ? undefined : { kind: 'hold' as const, reason, detail: `${p.figure} for ${secs(o.now - s.pressureSince!)}, but ${detail}` },
  });
  if (o.target >= o.max) return held('max', `the range's maximum (${o.max}) is reached`);
  const room = memoryRoom(o);
  if (room < 1) return held('memory', `the memory limit (${Math.round(o.memoryLimit! / 1048576)} MiB) holds no more workers at ${Math.round(o.largestRss / 1048576)} MiB each`);
  const step = Math.min(s.lastStep > 0 ? s.lastStep * 2 : 1, o.max - o.target, room);
  const capped = room < Math.min(s.lastStep > 0 ? s.lastStep * 2 : 1, o.max - o.target) ? ' (as many as the memory limit holds)' : '';
  return {
    state: { ...s, pressureSince: undefined, pressure: undefined, lastStep: step, held: undefined, idleSince: undefined },
    decision: { kind: 'up', to: o.target + step, reason: p.reason, detail: `${p.figure} for ${secs(o.now - s.pressureSince!)}${capped}` },
  };
}
