/**
 * Lifecycle hooks: the functions a config file may give under `hooks`, what each receives,
 * and the check of what the file gave. Master hooks run in the master (master/hooks.ts), worker
 * hooks in each worker (worker/hooks.ts); both bound every call by hook-timeout. Kept free of
 * heavy imports: a worker loads this file when the config file has worker hooks.
 */
import { CorralError } from '../errors.js';
import type { DrainReason } from '../ipc/messages.js';
import type { RetireCause, StopCause } from '../master/exit-cause.js';
import type { ExitReason } from '../metrics/definitions.js';
import type { Sig } from '../master/signals.js';

/** The second argument of every hook. */
export interface HookContext {
  /** Aborted when hook-timeout runs out: the call is then abandoned, so stop what it started. */
  signal: AbortSignal;
}

/** masterStarted: the listeners are bound, no worker has been started yet. */
export interface MasterStartedEvent {
  pid: number;
  /** The listeners, as `corral status` names them (`0.0.0.0:8000`, `unix:/run/app.sock`, ...). */
  listeners: string[];
  /** How many workers the first generation will have (with a range of workers, its minimum). */
  workers: number;
  /** The config file these hooks came from. */
  configFile: string;
}

/** generationReady: every worker of a generation is ready (the first start, and each successful reload). */
export interface GenerationReadyEvent {
  generation: number;
  /** The reload that started it (1, 2, ...); undefined for the first generation. */
  reload: number | undefined;
  /** Its workers, by slot. */
  workers: Array<{ slot: number; pid: number }>;
  /** The generation it replaces (now draining); undefined at the first start. */
  previous: number | undefined;
}

/** reloadEnded: a reload (HUP) is over. */
export type ReloadEndedEvent =
  /** The new generation serves; the previous one drains. */
  | { reload: number; result: 'succeeded'; generation: number; previous: number }
  /** The new configuration was refused (invalid, or no worker could start with it): nothing changed. */
  | { reload: number; result: 'failed'; reason: string; code: string | undefined; serving: number }
  /**
   * The new generation started but a worker of it failed to boot: the rest of it is drained
   * and `serving`, the previous generation, keeps serving.
   */
  | { reload: number; result: 'rolled-back'; reason: string; generation: number; serving: number; worker: { slot: number; pid: number } };

/** workerExited: a worker process has exited and been reaped by the master. */
export interface WorkerExitedEvent {
  generation: number;
  slot: number;
  pid: number;
  /** The same value as the `reason` label of corral_worker_exits_total. */
  reason: ExitReason;
  /** What the master had decided when it told the worker to stop or killed it; undefined: nothing (it died by itself). */
  stopCause: StopCause | undefined;
  /** Why it was being replaced (max-requests, memory, an uncaught exception), when it was. */
  retireCause: RetireCause | undefined;
  /** Its state when it exited: `booting` means it never became ready. */
  exitedWhile: 'booting' | 'ready' | 'retiring' | 'draining' | undefined;
  /** Why its boot failed, when it said so. */
  bootFailure: { kind: 'load' | 'init' | 'warmup' | 'listen'; message: string } | undefined;
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The signal corral itself sent to kill it (SIGKILL at a deadline), if any. */
  killedBy: NodeJS.Signals | undefined;
}

/** masterExiting: every worker has exited; the master exits when this hook settles (or hook-timeout runs out). */
export interface MasterExitingEvent {
  /** The master's exit code: 0 after a stop, 3 or 4 after a failed start (docs/errors.md). */
  exitCode: number;
  /** The signal that began the stop; undefined after a failed start. */
  signal: Sig | undefined;
  /** Why the start failed (exit 3 or 4), with its stable code. */
  error: { code: string; message: string } | undefined;
}

/** workerBoot: in a new worker, before the app is loaded. */
export interface WorkerBootEvent {
  generation: number;
  slot: number;
  pid: number;
}

/** workerStopping: in a worker, as its drain begins (when the app's drain signal aborts). */
export interface WorkerStoppingEvent {
  generation: number;
  slot: number;
  pid: number;
  reason: DrainReason;
}

type Hook<E> = (event: E, ctx: HookContext) => unknown;

/** The hooks a config file may give (`defineConfig({ hooks: { ... } })`); each may be async. */
export interface CorralHooks {
  /** Master: the listeners are bound; the first workers are started when it settles (at most hook-timeout). */
  masterStarted?: Hook<MasterStartedEvent>;
  /** Master: every worker of a generation is ready. */
  generationReady?: Hook<GenerationReadyEvent>;
  /** Master: a reload is over, with its result. */
  reloadEnded?: Hook<ReloadEndedEvent>;
  /** Master: a worker exited, with its typed cause. */
  workerExited?: Hook<WorkerExitedEvent>;
  /** Master: the last hook before it exits; the exit waits for it (at most hook-timeout). */
  masterExiting?: Hook<MasterExitingEvent>;
  /** Worker: before the app is loaded; a throw or a timeout fails the worker's boot. */
  workerBoot?: Hook<WorkerBootEvent>;
  /** Worker: its drain begins; a throw or a timeout is logged and the drain goes on. */
  workerStopping?: Hook<WorkerStoppingEvent>;
}

type HookName = keyof CorralHooks;
export type MasterHookName = 'masterStarted' | 'generationReady' | 'reloadEnded' | 'workerExited' | 'masterExiting';
export type WorkerHookName = 'workerBoot' | 'workerStopping';

const MASTER_HOOKS = ['masterStarted', 'generationReady', 'reloadEnded', 'workerExited', 'masterExiting'] as const satisfies readonly MasterHookName[];
const WORKER_HOOKS = ['workerBoot', 'workerStopping'] as const satisfies readonly WorkerHookName[];
const HOOK_NAMES: readonly HookName[] = [...MASTER_HOOKS, ...WORKER_HOOKS];

/** The event each hook receives, by name. */
export type HookEvent<N extends HookName> = Parameters<NonNullable<CorralHooks[N]>>[0];

/** Hooks as checked: only functions, only known names. */
export type Hooks = { readonly [N in HookName]?: (event: HookEvent<N>, ctx: HookContext) => unknown };

/**
 * Checks the `hooks` value of a config file: absent, or an object whose every key is a hook
 * name and every value a function. Anything else is a configuration error (exit 78 at
 * start; at a HUP the reload is refused and the old configuration keeps serving).
 */
export function parseHooks(value: unknown, file: string): Hooks {
  if (value === undefined) return {};
  const where = `config file ${file}: hooks`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CorralError('E_CONFIG_VALUE', `${where} must be an object of functions (${HOOK_NAMES.join(', ')}); got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (!(HOOK_NAMES as readonly string[]).includes(key)) {
      throw new CorralError('E_CONFIG_VALUE', `${where}: unknown hook '${key}' (hooks are ${HOOK_NAMES.join(', ')}; see docs/hooks.md)`);
    }
    let fn: unknown;
    try {
      fn = (value as Record<string, unknown>)[key];
    } catch (err) {
      throw new CorralError('E_CONFIG_VALUE', `${where}.${key} cannot be read (${(err as Error)?.message ?? String(err)})`, { cause: err });
    }
    if (fn === undefined) continue;
    if (typeof fn !== 'function') throw new CorralError('E_CONFIG_VALUE', `${where}.${key} must be a function (sync or async); got ${fn === null ? 'null' : typeof fn}`);
    out[key] = fn;
  }
  return out as Hooks;
}

/** Whether any master hook is given: the master's exit then waits for them (at most hook-timeout). */
export function hasMasterHooks(hooks: Hooks): boolean {
  return MASTER_HOOKS.some((n) => hooks[n] !== undefined);
}

/** Whether any worker-side hook is given: only then does a worker load the config file. */
export function hasWorkerHooks(hooks: Hooks): boolean {
  return WORKER_HOOKS.some((n) => hooks[n] !== undefined);
}

/** How one bounded call ended. */
export type HookOutcome = { ok: true } | { ok: false; timedOut: false; error: unknown } | { ok: false; timedOut: true };

/** The timers a bounded call uses: the real ones, or the master's runtime (a fake clock in tests). */
export interface HookTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Calls `fn(event, { signal })` and settles (never rejects) when it settles or `ms` runs
 * out, whichever comes first. A call that overruns is abandoned: its signal is aborted and
 * whatever it does later is ignored. A synchronous throw counts as a failure like a rejection.
 */
export function callBounded<E>(fn: (event: E, ctx: HookContext) => unknown, event: E, ms: number, timers: HookTimers): Promise<HookOutcome> {
  const abort = new AbortController();
  return new Promise<HookOutcome>((resolve) => {
    let settled = false;
    const end = (o: HookOutcome) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(timer);
      resolve(o);
    };
    const timer = timers.setTimeout(() => {
      end({ ok: false, timedOut: true });
      abort.abort(new Error(`hook-timeout (${ms / 1000} s) ran out`));
    }, ms);
    try {
      Promise.resolve(fn(event, { signal: abort.signal })).then(
        () => end({ ok: true }),
        (error: unknown) => end({ ok: false, timedOut: false, error }),
      );
    } catch (error) {
      end({ ok: false, timedOut: false, error });
    }
  });
}

/** A failure's reason in one line, for the log. */
export function hookErrorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
