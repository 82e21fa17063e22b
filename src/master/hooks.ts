/**
 * The master's side of lifecycle hooks: calls them off the main loop, one call of a hook at
 * a time, each bounded by hook-timeout, and turns every failure into a log line with a
 * stable code. Nothing here can stop, stall or kill the master: the loop never awaits a hook
 * (only the start waits for masterStarted and the exit for masterExiting, each bounded).
 */
import type { Resolution } from '../config/resolve.js';
import {
  callBounded, hasWorkerHooks, hookErrorText, type HookEvent, type Hooks, type HookTimers, type MasterHookName, type ReloadEndedEvent,
} from '../config/hooks.js';
import type { Listener } from '../listeners/acquire.js';
import type { WorkerHooksSpec } from '../ipc/messages.js';
import type { Logger } from '../logging/logger.js';
import type { ExitReason } from '../metrics/definitions.js';
import type { WorkerHandle } from './worker-handle.js';

/** Calls of one hook that may be pending (queued or running); past this a new one is dropped (memory stays flat). */
export const MAX_WAITING = 100;

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A reload's result, as the master knows it where the reload ends (reloadEnded adds its number). */
export type ReloadOutcome = DistributiveOmit<ReloadEndedEvent, 'reload'>;

export class MasterHooks {
  private hooks: Hooks;
  private timeoutMs: number;
  /** The last call queued per hook: the next one starts when it is over. */
  private readonly tails = new Map<MasterHookName, Promise<void>>();
  private readonly waiting = new Map<MasterHookName, number>();
  /** Calls not yet over, for the wait before the exit. */
  private readonly open = new Set<Promise<void>>();

  constructor(
    private readonly log: Logger,
    private readonly timers: HookTimers,
    r: Resolution,
  ) {
    this.hooks = r.hooks;
    this.timeoutMs = r.config.hookTimeout * 1000;
  }

  /** The hooks and hook-timeout of the configuration that now serves (a reload that succeeded). */
  use(r: Resolution): void {
    this.hooks = r.hooks;
    this.timeoutMs = r.config.hookTimeout * 1000;
  }

  has(name: MasterHookName): boolean {
    return this.hooks[name] !== undefined;
  }

  /**
   * Queues a call of `name` with `event` and returns at once. The returned promise settles
   * (never rejects) when this call is over: done, failed, abandoned at hook-timeout, or dropped.
   * Calls of one hook run in the order of their events, never two at once; different hooks
   * run independently. The function is the one configured now, even if a reload swaps it later.
   */
  run<N extends MasterHookName>(name: N, event: HookEvent<N>): Promise<void> {
    const fn = this.hooks[name] as ((e: HookEvent<N>, ctx: { signal: AbortSignal }) => unknown) | undefined;
    if (!fn) return Promise.resolve();
    const waiting = this.waiting.get(name) ?? 0;
    if (waiting >= MAX_WAITING) {
      this.log.warn({ code: 'E_HOOK_BACKLOG', hook: name }, `hook ${name}: ${waiting} calls already pending behind a slow one; this one is dropped (E_HOOK_BACKLOG)`);
      return Promise.resolve();
    }
    this.waiting.set(name, waiting + 1);
    const ms = this.timeoutMs;
    const call = (this.tails.get(name) ?? Promise.resolve()).then(async () => {
      this.waiting.set(name, (this.waiting.get(name) ?? 1) - 1);
      const outcome = await callBounded(fn, event, ms, this.timers);
      if (outcome.ok) return;
      if (outcome.timedOut) {
        this.log.error({ code: 'E_HOOK_TIMEOUT', hook: name }, `hook ${name} did not finish within hook-timeout (${ms / 1000} s); abandoned, corral goes on (E_HOOK_TIMEOUT)`);
      } else {
        this.log.error({ code: 'E_HOOK_FAILED', hook: name, err: outcome.error }, `hook ${name} failed: ${hookErrorText(outcome.error)}; corral goes on (E_HOOK_FAILED)`);
      }
    });
    this.tails.set(name, call);
    this.open.add(call);
    void call.finally(() => {
      this.open.delete(call);
      if (this.tails.get(name) === call) this.tails.delete(name);
    });
    return call;
  }

  masterStarted(r: Resolution, listeners: readonly Listener[]): Promise<void> {
    return this.run('masterStarted', { pid: process.pid, listeners: listeners.map((l) => l.label), workers: r.config.workers.min, configFile: r.configFile ?? '' });
  }

  /** `previous`: the generation it replaces and the reload that started it (none at the first start). */
  generationReady(id: number, workers: readonly WorkerHandle[], previous: { id: number; reload: number } | undefined): Promise<void> {
    return this.run('generationReady', {
      generation: id, reload: previous?.reload, previous: previous?.id, workers: workers.map((w) => ({ slot: w.slot, pid: w.pid })),
    });
  }

  reloadEnded(reload: number, outcome: ReloadOutcome): Promise<void> {
    return this.run('reloadEnded', { reload, ...outcome } as ReloadEndedEvent);
  }

  /**
   * The last hook: masterExiting, while the calls still queued (the last workerExited, say)
   * finish. The whole wait is bounded by one hook-timeout, so the master exits in time.
   */
  beforeExit(event: HookEvent<'masterExiting'>): Promise<void> {
    const ms = this.timeoutMs;
    const work = Promise.all([this.run('masterExiting', event), ...this.open]);
    if (this.open.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.timers.setTimeout(() => {
        this.log.warn(`hooks still running after hook-timeout (${ms / 1000} s) at exit; exiting without them`);
        resolve();
      }, ms + 50);
      void work.then(() => {
        this.timers.clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** What workerExited receives: the handle's record of the exit, as values. */
export function workerExitedEvent(w: WorkerHandle, reason: ExitReason): HookEvent<'workerExited'> {
  const bf = w.bootFailure;
  return {
    generation: w.gen, slot: w.slot, pid: w.pid, reason,
    stopCause: w.stopCause, retireCause: w.retireCause, exitedWhile: w.exitedWhile,
    bootFailure: bf && { kind: bf.kind, message: bf.message },
    code: w.exit?.code ?? null, signal: w.exit?.signal ?? null, killedBy: w.killedBy,
  };
}

/**
 * What a worker of this configuration needs to run the worker-side hooks: the config file
 * (it loads it itself: functions cannot travel in its spec) and hook-timeout. Undefined
 * when there are none, so a worker without hooks never reads the config file.
 */
export function workerHooksSpec(r: Resolution): WorkerHooksSpec | undefined {
  if (!r.configFile || !hasWorkerHooks(r.hooks)) return undefined;
  return { file: r.configFile, timeoutMs: Math.round(r.config.hookTimeout * 1000), boot: r.hooks.workerBoot !== undefined };
}
