import type { BusyWith, MasterMessage, WorkerMessage } from '../ipc/messages.js';
import type { Generation } from './generation.js';

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
 */
export type WorkerState = 'booting' | 'ready' | 'retiring' | 'draining' | 'dead';

/** What the handle needs of a worker process: a ChildProcess, or a fake in unit tests. */
export interface WorkerProcess {
  readonly pid?: number | undefined;
  readonly connected: boolean;
  send(msg: MasterMessage, cb: (err: Error | null) => void): boolean;
  kill(sig: NodeJS.Signals): boolean;
  on(event: 'message', fn: (msg: WorkerMessage) => void): unknown;
  once(event: 'exit', fn: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  once(event: 'close', fn: () => void): unknown;
  once(event: 'error', fn: (err: Error) => void): unknown;
}

/** How long a fast shutdown waits for a worker before SIGKILL. */
export const FAST_KILL_MS = 2000;

/** Why the master must act on a worker now (see `overdue`). */
export type Overdue = 'kill' | 'boot-timeout' | 'silent';

/**
 * The master's view of one worker process: identity, state, and the clocks that decide
 * when it is too slow to boot, too silent, or must be killed. It holds its generation, and
 * so the configuration it was started with, whatever the master serves now. Times are
 * monotonic ms.
 */
export class WorkerHandle {
  state: WorkerState = 'booting';
  readonly spawnedAt: number;
  readyAt = 0;
  lastCheckin: number;
  rss = 0;
  /** Requests in flight at its last check-in. */
  inflight = 0;
  /** RSS at the first check-in: what the app needs just to start. */
  firstRss = 0;
  /** Kept (reused) connections it holds, as last reported; null until the first report. */
  kept: number | null = null;
  busy: BusyWith | undefined;
  /** When the master asked it to stop (drain or fast stop). */
  stopAskedAt: number | undefined;
  /** SIGKILL is sent at this time once it was asked to stop. */
  killAt = Infinity;
  /** Why the master stopped it, for the exit log line. */
  stopReason: string | undefined;
  retireReason: string | undefined;
  bootFailure: { kind: 'load' | 'init' | 'listen'; message: string } | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** The exit was noticed and handled by the loop. */
  reaped = false;
  killedBy: NodeJS.Signals | undefined;

  constructor(
    readonly child: WorkerProcess,
    readonly generation: Generation,
    readonly slot: number,
    now: number,
  ) {
    this.spawnedAt = now;
    this.lastCheckin = now;
  }

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
    return this.exit === undefined;
  }

  /** Serving requests: counts toward its generation's capacity. */
  get serving(): boolean {
    return this.state === 'ready' || this.state === 'retiring';
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

  /** Asks for a graceful drain, escalating to SIGKILL after its generation's graceful-timeout. */
  drain(now: number, reason: string): void {
    if (!this.alive || this.state === 'draining') return;
    this.state = 'draining';
    this.stopReason ??= reason;
    this.stopAskedAt ??= now;
    this.killAt = now + this.config.gracefulTimeout * 1000;
    if (!this.send({ t: 'drain' })) this.signal('SIGTERM');
  }

  /** Fast stop: connections are cut, SIGKILL after FAST_KILL_MS at most. */
  stopFast(now: number, reason: string): void {
    if (!this.alive) return;
    this.state = 'draining';
    this.stopReason ??= reason;
    this.stopAskedAt ??= now;
    this.killAt = Math.min(this.killAt, now + FAST_KILL_MS);
    if (!this.send({ t: 'stop' })) this.signal('SIGKILL');
  }

  /** The next time the master must look at this worker, or Infinity. */
  deadline(): number {
    if (!this.alive || this.killedBy) return Infinity;
    const cfg = this.config;
    let at = this.killAt;
    if (this.state === 'booting') at = Math.min(at, this.spawnedAt + cfg.bootTimeout * 1000);
    else if (this.serving && cfg.timeout > 0) at = Math.min(at, this.lastCheckin + cfg.timeout * 1000);
    return at;
  }

  /** What is overdue at `now`: the kill after a stop, the boot timeout, or silence. */
  overdue(now: number): Overdue | undefined {
    // Killed already: only its exit is awaited.
    if (!this.alive || this.killedBy) return undefined;
    if (now >= this.killAt) return 'kill';
    const cfg = this.config;
    if (this.state === 'booting' && now - this.spawnedAt > cfg.bootTimeout * 1000) return 'boot-timeout';
    if (this.serving && cfg.timeout > 0 && now - this.lastCheckin > cfg.timeout * 1000) return 'silent';
    return undefined;
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    if (sig === 'SIGKILL') {
      this.killedBy = sig;
      this.killAt = Infinity;
    }
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }
}
