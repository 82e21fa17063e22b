/**
 * The worker's side of lifecycle hooks. A worker gets no functions from the master (its spec
 * is JSON), so when the config file has worker-side hooks it loads the file itself, once, at
 * boot; a worker without them never reads it. Every call is bounded by hook-timeout.
 */
import { loadConfigFile } from '../config/file.js';
import { callBounded, hookErrorText, parseHooks, type HookEvent, type Hooks, type HookTimers, type WorkerHookName } from '../config/hooks.js';
import type { DrainReason, WorkerHooksSpec } from '../ipc/messages.js';
import type { Logger } from '../logging/logger.js';

const TIMERS: HookTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** A boot hook that failed: the worker reports a failed boot with this message. */
export class HookBootError extends Error {}

export class WorkerHooks {
  /** The hooks as the config file gives them now; a file that no longer loads is an error here. */
  private readonly loaded: Promise<Hooks>;

  constructor(
    private readonly spec: WorkerHooksSpec,
    private readonly who: { generation: number; slot: number },
    private readonly log: Logger,
  ) {
    this.loaded = loadConfigFile(spec.file).then((values) => parseHooks(values.hooks, spec.file));
    // Read at drain if not at boot: a failure is reported where it matters.
    this.loaded.catch(() => {});
  }

  /** workerBoot, before the app loads. Throws HookBootError when it fails or overruns: a failed boot. */
  async boot(): Promise<void> {
    if (!this.spec.boot) return;
    let hooks: Hooks;
    try {
      hooks = await this.loaded;
    } catch (err) {
      throw new HookBootError(`workerBoot hook: the config file cannot be loaded in the worker (E_HOOK_FAILED): ${hookErrorText(err)}`);
    }
    const fn = hooks.workerBoot;
    if (!fn) return;
    const o = await callBounded(fn, this.event('workerBoot', undefined), this.spec.timeoutMs, TIMERS);
    if (o.ok) return;
    if (o.timedOut) throw new HookBootError(`workerBoot hook did not finish within hook-timeout (${this.spec.timeoutMs / 1000} s) (E_HOOK_TIMEOUT)`);
    throw new HookBootError(`workerBoot hook failed (E_HOOK_FAILED): ${hookErrorText(o.error)}`);
  }

  /** workerStopping, as the drain begins. Never rejects: a failure is logged and the drain goes on. */
  async stopping(reason: DrainReason): Promise<void> {
    let fn: Hooks['workerStopping'];
    try {
      fn = (await this.loaded).workerStopping;
    } catch (err) {
      this.log.error({ code: 'E_HOOK_FAILED', hook: 'workerStopping' }, `workerStopping hook: the config file cannot be loaded in the worker: ${hookErrorText(err)}; the drain goes on (E_HOOK_FAILED)`);
      return;
    }
    if (!fn) return;
    const o = await callBounded(fn, this.event('workerStopping', reason), this.spec.timeoutMs, TIMERS);
    if (o.ok) return;
    if (o.timedOut) {
      this.log.error({ code: 'E_HOOK_TIMEOUT', hook: 'workerStopping' }, `hook workerStopping did not finish within hook-timeout (${this.spec.timeoutMs / 1000} s); abandoned, the drain goes on (E_HOOK_TIMEOUT)`);
    } else {
      this.log.error({ code: 'E_HOOK_FAILED', hook: 'workerStopping', err: o.error }, `hook workerStopping failed: ${hookErrorText(o.error)}; the drain goes on (E_HOOK_FAILED)`);
    }
  }

  private event<N extends WorkerHookName>(name: N, reason: DrainReason | undefined): HookEvent<N> {
    const base = { generation: this.who.generation, slot: this.who.slot, pid: process.pid };
    return (name === 'workerStopping' ? { ...base, reason } : base) as HookEvent<N>;
  }
}
