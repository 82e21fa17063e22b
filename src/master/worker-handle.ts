import type { BootFailureKind, BusyWith, MasterMessage } from '../ipc/messages.js';
import type { AppLoadCode } from '../errors.js';
import { WORKER_EXIT } from '../exit-codes.js';
import { drainReason, stopText, type ExitedWorker, type RetireCause, type StopCause } from './exit-cause.js';
import type { Generation } from './generation.js';
import type { WorkerState } from './states.js';
import type { AdapterMessage, RelayPeer } from './relay.js';

/**
 * A worker's life as the master sees it:
 *
 *   booting ──ready──> ready ──asks to be replaced / above max-memory──> retiring
 *      │                 │                                                  │
 *      │                 └───────────── drain(reason) ──> draining <────────┘
 *      │                                                     │
 *      └── boot-timeout, exit ──────────> dead <──── exit ───┘   (SIGKILL at killAt)
 *
 * `retiring` still serves: its replacement is started first and it is drained once that
 * one is ready, so capacity never dips. Any state may go to `dead` (a crash, a kill).
 * Only the handle's own methods move it along; the master reads it and decides.
 */
/** What the handle needs of a worker process: a ChildProcess, or a fake in unit tests. */
export interface WorkerProcess {
  readonly pid?: number | undefined;
  readonly connected: boolean;
  send(msg: MasterMessage | AdapterMessage, cb: (err: Error | null) => void): boolean;
  kill(sig: NodeJS.Signals): boolean;
  /** A worker runs app code: a message may be anything JSON can carry. */
  on(event: 'message', fn: (msg: unknown) => void): unknown;
  once(event: 'exit', fn: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  once(event: 'close', fn: () => void): unknown;
  once(event: 'error', fn: (err: Error) => void): unknown;
}

/** How long a fast shutdown waits for a worker before SIGKILL. */
const FAST_KILL_MS = 2000;

/** Why the master must act on a worker now (see `overdue`). */
type Overdue = 'kill' | 'boot-timeout' | 'silent';

/** Why a worker could not boot, as it said (or as its exit code or the master's kill says). */
interface BootFailure {
  kind: BootFailureKind;
  message: string;
  /** With kind 'load': the errors.ts code the worker gave (E_APP_*). */
  code?: AppLoadCode | undefined;
  /** Worked out by the master (from the exit code, or its own kill) rather than said by the worker. */
  inferred?: boolean;
}

/** What a heartbeat tells of a worker. */
interface Checkin {
  rss: number;
  inflight: number;
  busy?: BusyWith | undefined;
}

/**
 * The master's view of one worker process: identity, state, and the clocks that decide
 * when it is too slow to boot, too silent, or must be killed. It holds its generation, and
 * so the configuration it was started with, whatever the master serves now. Times are
 * monotonic ms. Every field is read-only outside: the methods below are the transitions.
 */
export class WorkerHandle implements ExitedWorker, RelayPeer {
  #state: WorkerState = 'booting';
  readonly spawnedAt: number;
  #readyAt = 0;
  #everReady = false;
  #lastCheckin: number;
  #rss = 0;
  #inflight = 0;
  #firstRss = 0;
  #kept: number | null = null;
  #busy: BusyWith | undefined;
  #stopAskedAt: number | undefined;
  #killAt = Infinity;
  #retireCause: RetireCause | undefined;
  #stopCause: StopCause | undefined;
  #bootFailure: BootFailure | undefined;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #exitedWhile: Exclude<WorkerState, 'dead'> | undefined;
  #killedBy: NodeJS.Signals | undefined;

  constructor(
    readonly child: WorkerProcess,
    readonly generation: Generation,
    readonly slot: number,
    now: number,
  ) {
    this.spawnedAt = now;
    this.#lastCheckin = now;
  }

  // ---- what the master reads ----------------------------------------------------------

  get state(): WorkerState { return this.#state; }
  get readyAt(): number { return this.#readyAt; }
  /** It reported ready at least once. */
  get everReady(): boolean { return this.#everReady; }
  get lastCheckin(): number { return this.#lastCheckin; }
  get rss(): number { return this.#rss; }
  /** Requests in flight at its last check-in. */
  get inflight(): number { return this.#inflight; }
  /** RSS at the first check-in: what the app needs just to start. */
  get firstRss(): number { return this.#firstRss; }
  /** Kept (reused) connections it holds, as last reported; null until the first report. */
  get kept(): number | null { return this.#kept; }
  /** The request it was busy with at its last check-in. */
  get busy(): BusyWith | undefined { return this.#busy; }
  /** When the master asked it to stop (drain or fast stop). */
  get stopAskedAt(): number | undefined { return this.#stopAskedAt; }
  /** Why it is to be replaced while it still serves. */
  get retireCause(): RetireCause | undefined { return this.#retireCause; }
  /** Why the master stopped or killed it: the first decision holds. */
  get stopCause(): StopCause | undefined { return this.#stopCause; }
  get bootFailure(): BootFailure | undefined { return this.#bootFailure; }
  /** Its exit status, once it exited. */
  get exit(): { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined { return this.#exit; }
  /** Its state when the master handled its exit. */
  get exitedWhile(): Exclude<WorkerState, 'dead'> | undefined { return this.#exitedWhile; }
  /** The signal corral killed it with, if it did. */
  get killedBy(): NodeJS.Signals | undefined { return this.#killedBy; }

  get gen(): number {
    return this.generation.id;
  }

  get config() {
    return this.generation.config;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get name(): string {
    return `worker ${this.pid} (gen ${this.gen} #${this.slot})`;
  }

  /** The process has not exited. */
  get alive(): boolean {
    return this.#exit === undefined;
  }

  /**
   * Serving requests: counts toward its generation's capacity. This is what "ready" means
   * everywhere (STATUS=, /readyz, a reload's progress): a draining worker no longer counts.
   */
  get serving(): boolean {
    return this.#state === 'ready' || this.#state === 'retiring';
  }

  // ---- what the worker says -----------------------------------------------------------

  /** Any message is a sign of life. */
  heard(now: number): void {
    this.#lastCheckin = now;
  }

  /** The worker listens: booting -> ready (unless it was killed meanwhile: it will not serve). */
  ready(now: number): void {
    if (this.#state !== 'booting' || this.#killedBy) return;
    this.#state = 'ready';
    this.#readyAt = now;
    this.#everReady = true;
  }

  heartbeat(c: Checkin): void {
    this.#rss = c.rss;
    this.#firstRss ||= c.rss;
    this.#inflight = c.inflight;
    this.#busy = c.busy;
  }

  connsReported(kept: number): void {
    this.#kept = kept;
  }

  bootFailed(f: BootFailure): void {
    this.#bootFailure = f;
  }

  // ---- what the master decides --------------------------------------------------------

  /** To be replaced: it keeps serving until its replacement is ready. Only a ready worker retires. */
  retire(cause: RetireCause): boolean {
    if (this.#state !== 'ready') return false;
    this.#state = 'retiring';
    this.#retireCause = cause;
    return true;
  }

  /** Asks for a graceful drain, escalating to SIGKILL after its generation's graceful-timeout. */
  drain(now: number, cause: StopCause): void {
    if (!this.alive || this.#state === 'draining') return;
    this.#state = 'draining';
    this.#stopCause ??= cause;
    this.#stopAskedAt ??= now;
    this.#killAt = now + this.config.gracefulTimeout * 1000;
    if (!this.send({ t: 'drain', reason: drainReason(this.#stopCause) })) this.signal('SIGTERM');
  }

  /** Fast stop: connections are cut, SIGKILL after FAST_KILL_MS at most. */
  stopFast(now: number, cause: StopCause): void {
    if (!this.alive) return;
    this.#state = 'draining';
    this.#stopCause ??= cause;
    this.#stopAskedAt ??= now;
    this.#killAt = Math.min(this.#killAt, now + FAST_KILL_MS);
    if (!this.send({ t: 'stop' })) this.signal('SIGKILL');
  }

  /**
   * SIGKILL now: for `cause` (it is silent, or failed its boot: then that is its boot
   * failure unless it said why itself), or, without one, because the stop it was asked for
   * is overdue.
   */
  kill(cause?: StopCause): void {
    if (cause) {
      this.#stopCause ??= cause;
      if (this.#state === 'booting') this.#bootFailure ??= { kind: 'init', message: stopText(cause, undefined), inferred: true };
    }
    this.signal('SIGKILL');
  }

  // ---- what the process does ----------------------------------------------------------

  /** The process exited (the first report holds). */
  exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exit ??= { code, signal };
  }

  /** The process could not be started at all (no pid): it counts as exited with 1. */
  spawnFailed(): void {
    if (this.pid < 0) this.exited(1, null);
  }

  /**
   * The master handles the exit: the state it died in is kept for the exit's cause. With no
   * boot-failed message (lost with the process), the exit code says whether the app failed to load.
   */
  reap(): void {
    if (this.#state === 'dead') return;
    if (this.#state === 'booting' && !this.#bootFailure && this.#exit?.code === WORKER_EXIT.APP_LOAD) {
      this.#bootFailure = { kind: 'load', message: `${this.name} exited with code ${WORKER_EXIT.APP_LOAD}: the app failed to load (see the lines above)`, inferred: true };
    }
    this.#exitedWhile = this.#state;
    this.#state = 'dead';
  }

  send(msg: MasterMessage): boolean {
    if (!this.child.connected) return false;
    try {
      // With a callback, a worker that died meanwhile (EPIPE) is not an 'error' event.
      this.child.send(msg, () => {});
      return true;
    } catch {
      return false;
    }
  }

  /** It can still be written to: alive, with its IPC channel open. */
  get connected(): boolean {
    return this.alive && this.child.connected;
  }

  /**
   * Writes a message another worker's Socket.IO adapter sent (see relay.ts). True once it is
   * handed to the channel, even when the channel is backed up: `done` then follows its write.
   */
  relay(msg: AdapterMessage, done: () => void): boolean {
    if (!this.connected) return false;
    this.child.send(msg, done);
    return true;
  }

  // ---- clocks -------------------------------------------------------------------------

  /** The next time the master must look at this worker, or Infinity. */
  deadline(): number {
    if (!this.alive || this.#killedBy) return Infinity;
    const cfg = this.config;
    let at = this.#killAt;
    if (this.#state === 'booting') at = Math.min(at, this.spawnedAt + cfg.bootTimeout * 1000);
    else if (this.serving && cfg.timeout > 0) at = Math.min(at, this.#lastCheckin + cfg.timeout * 1000);
    return at;
  }

  /** What is overdue at `now`: the kill after a stop, the boot timeout, or silence. */
  overdue(now: number): Overdue | undefined {
    // Killed already: only its exit is awaited.
    if (!this.alive || this.#killedBy) return undefined;
    if (now >= this.#killAt) return 'kill';
    const cfg = this.config;
    if (this.#state === 'booting' && now - this.spawnedAt > cfg.bootTimeout * 1000) return 'boot-timeout';
    if (this.serving && cfg.timeout > 0 && now - this.#lastCheckin > cfg.timeout * 1000) return 'silent';
    return undefined;
  }

  private signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    if (sig === 'SIGKILL') {
      this.#killedBy = sig;
      this.#killAt = Infinity;
    }
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }
}
