/**
 * The first generation's workers, started as soon as the configuration and the listeners are
 * known, before the master loads the rest of its own code (the supervisor, the control
 * socket, the metrics): a worker's Node start and module loading then overlap the master's
 * instead of following it. The master takes each one over when it would spawn it, if it
 * would start it exactly so (the same spec, environment and working directory); whatever the
 * process did meanwhile (its messages, its exit) reaches the master then, in order.
 */
import type { ChildProcess } from 'node:child_process';
import { attachWorkerLogs, type MasterLogs } from './master-logs.js';
import { startWorkerProcess, workerSpec, type SpawnContext } from './spawn.js';

interface Early {
  child: ChildProcess;
  shape: string;
  /** What the process emitted before the master took it, in order. */
  events: Array<[event: string, args: unknown[]]>;
  record: Map<string, (...args: unknown[]) => void>;
}

/** The events the master listens to on a worker's process. */
const EVENTS = ['message', 'exit', 'close', 'error'] as const;

/**
 * What must be equal for an early process to be the worker the master would start. The
 * request limit is left out: its jitter is drawn at random for each spawn anyway.
 */
function shapeOf(ctx: SpawnContext): string {
  const { maxRequests: _, ...spec } = workerSpec(ctx);
  return JSON.stringify({ spec, env: ctx.env, cwd: ctx.cwd, capture: ctx.config.captureOutput, access: ctx.access ?? null });
}

export class EarlyWorkers {
  private readonly early = new Map<number, Early>();

  /** Starts one process per slot of generation 1, from the context the master will use. */
  constructor(base: Omit<SpawnContext, 'gen' | 'slot'>, count: number) {
    for (let slot = 1; slot <= count; slot++) {
      const ctx: SpawnContext = { ...base, gen: 1, slot };
      const child = startWorkerProcess(ctx);
      const e: Early = { child, shape: shapeOf(ctx), events: [], record: new Map() };
      for (const name of EVENTS) {
        const fn = (...args: unknown[]) => void e.events.push([name, args]);
        e.record.set(name, fn);
        child.on(name, fn);
      }
      this.early.set(slot, e);
    }
  }

  /**
   * The master's spawn for `ctx`: its early process when there is one for this slot of
   * generation 1 started the same way, else undefined (and a mismatched one is killed). The
   * master attaches its listeners as this returns; what was recorded is emitted again on the
   * next tick, before any new I/O event, so it sees everything in order.
   */
  take(ctx: SpawnContext, logs: MasterLogs): ChildProcess | undefined {
    const e = ctx.gen === 1 ? this.early.get(ctx.slot) : undefined;
    if (!e) return undefined;
    this.early.delete(ctx.slot);
    for (const [name, fn] of e.record) e.child.off(name, fn);
    if (e.shape !== shapeOf(ctx)) {
      e.child.kill('SIGKILL');
      return undefined;
    }
    attachWorkerLogs(e.child, `${ctx.gen}.${ctx.slot}`, logs, ctx.listeners.length);
    process.nextTick(() => {
      for (const [name, args] of e.events) e.child.emit(name, ...args);
    });
    return e.child;
  }

  /** Kills those the master never took (its start failed after they were spawned). */
  discard(): void {
    for (const e of this.early.values()) {
      for (const [name, fn] of e.record) e.child.off(name, fn);
      e.child.on('error', () => {});
      e.child.kill('SIGKILL');
    }
    this.early.clear();
  }
}
