import type { ChildProcess } from 'node:child_process';
import type { BusyWith, MasterMessage } from '../ipc/messages.js';

export type WorkerState = 'booting' | 'ready' | 'retiring' | 'draining' | 'dead';

/**
 * The master's view of one worker process: identity, state and the clocks that decide
 * when it is too slow to boot, too silent, or must be killed. Times are monotonic ms.
 */
export class WorkerHandle {
  state: WorkerState = 'booting';
  readonly spawnedAt: number;
  readyAt = 0;
  lastCheckin: number;
  rss = 0;
  /** RSS at the first check-in: what the app needs just to start. */
  firstRss = 0;
  inflight = 0;
  /** Kept (reused) connections it holds, as last reported; null until the first report. */
  kept: number | null = null;
  busy: BusyWith | undefined;
  /** Set when the master decided the worker must stop; SIGKILL is sent at this time. */
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
    readonly child: ChildProcess,
    readonly gen: number,
    readonly slot: number,
    now: number,
  ) {
    this.spawnedAt = now;
    this.lastCheckin = now;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get name(): string {
    return `worker ${this.pid} (gen ${this.gen} #${this.slot})`;
  }

  /** Serving or about to: counts toward the generation's capacity. */
  get alive(): boolean {
    return this.exit === undefined;
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

  /** Asks for a graceful drain, escalating to SIGKILL after the deadline. */
  drain(now: number, graceMs: number, reason: string): void {
    if (this.state === 'draining' || this.state === 'dead') return;
    this.state = 'draining';
    this.stopReason ??= reason;
    this.killAt = now + graceMs;
    if (!this.send({ t: 'drain' })) this.signal('SIGTERM');
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    if (sig === 'SIGKILL') this.killedBy = sig;
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }
}
