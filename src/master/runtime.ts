/**
 * The master's outside world: the signals it handles, and the processes, clock, signals and
 * timers it uses, behind one interface so unit tests can drive it without a process.
 */
import { spawnWorker, type SpawnContext } from './spawn.js';
import type { WorkerProcess } from './worker-handle.js';
import type { MasterLogs } from './master-logs.js';
import type { Sig } from './signals.js';


/**
 * What the master needs of the world besides its configuration: processes, a clock, signals
 * and timers. Production uses the real ones (see `realRuntime`); unit tests pass fakes and
 * drive the loop without a single process.
 */
export interface MasterRuntime {
  /** Starts a worker process; its log channels are connected by the implementation. */
  spawn(ctx: SpawnContext): WorkerProcess;
  /** Monotonic milliseconds. */
  now(): number;
  onSignal(sig: Sig, fn: () => void): void;
  offSignal(sig: Sig, fn: () => void): void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setImmediate(fn: () => void): unknown;
}

export function realRuntime(logs: MasterLogs): MasterRuntime {
  return {
    spawn: (ctx) => spawnWorker(ctx, logs),
    now: () => performance.now(),
    onSignal: (sig, fn) => process.on(sig, fn),
    offSignal: (sig, fn) => process.off(sig, fn),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    setImmediate: (fn) => setImmediate(fn),
  };
}
