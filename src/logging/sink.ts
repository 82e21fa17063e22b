import { createRequire } from 'node:module';
import { writeSync } from 'node:fs';
import pino from 'pino';
import type { Target } from './destinations.js';
import type { Rotation } from './access-files.js';

const require = createRequire(import.meta.url);

/** pino's own file/fd writer (sonic-boom), also what pino-roll returns. */
type SonicBoom = ReturnType<typeof pino.destination>;

/**
 * The one writer of one log destination. Takes whole lines only (callers never split a
 * line across writes), applies backpressure through `write()`'s return value and 'drain',
 * reopens on USR1, and survives write errors: they are reported on stderr at most once per
 * interval, lines meanwhile are counted and dropped, and the file is reopened.
 */
export class Sink {
  private stream: SonicBoom | undefined;
  private broken: Error | undefined;
  private dropped = 0;
  private lastReport = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private drainWaiters: Array<() => void> = [];
  private closed = false;

  private constructor(
    readonly name: string,
    private readonly target: Exclude<Target, { kind: 'off' }>,
    private readonly rotation: Rotation,
    private readonly errorIntervalMs: number,
    private readonly sync: boolean,
  ) {}

  static async open(name: string, target: Exclude<Target, { kind: 'off' }>, opts: { rotation: Rotation; errorIntervalMs: number; sync: boolean }): Promise<Sink> {
    const sink = new Sink(name, target, opts.rotation, opts.errorIntervalMs, opts.sync);
    await sink.openStream();
    return sink;
  }

  get path(): string {
    return this.target.kind === 'file' ? this.target.path : this.target.fd === 1 ? 'stdout' : 'stderr';
  }

  /** Writes whole lines; false means "wait for onDrain before writing more". */
  write(lines: string): boolean {
    if (!this.stream || this.closed) {
      this.dropped += countLines(lines);
      return true;
    }
    // A synchronous write that fails drops the stream inside write(): nothing to wait for then.
    return this.stream.write(lines) || this.stream === undefined;
  }

  onDrain(cb: () => void): void {
    this.drainWaiters.push(cb);
  }

  /** USR1: reopen the file by name (logrotate moved it away). */
  reopen(): void {
    if (this.target.kind !== 'file') return;
    if (!this.stream) return void this.openStream();
    try {
      this.stream.reopen();
    } catch (err) {
      this.fail(err as Error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const s = this.stream;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.once('error', () => resolve());
      try {
        s.end();
      } catch {
        resolve();
      }
    });
  }

  private async openStream(): Promise<void> {
    try {
      const s = await this.createStream();
      s.on('error', (err: Error) => this.fail(err));
      s.on('drain', () => {
        for (const w of this.drainWaiters.splice(0)) w();
      });
      this.stream = s;
      if (this.broken) {
        this.report(`${this.name} ${this.path} is writable again (${this.dropped} line(s) dropped meanwhile)`);
        this.broken = undefined;
        this.dropped = 0;
      }
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private async createStream(): Promise<SonicBoom> {
    const t = this.target;
    if (t.kind === 'std') return pino.destination({ fd: t.fd, sync: this.sync });
    const r = this.rotation;
    if (r.size > 0 || r.interval !== 'off') {
      const roll = require('pino-roll') as (o: Record<string, unknown>) => Promise<SonicBoom>;
      return roll({
        file: t.path,
        size: r.size > 0 ? `${Math.max(1, Math.round(r.size / 1024))}k` : undefined,
        frequency: r.interval === 'off' ? undefined : r.interval,
        limit: { count: r.keep },
        sync: this.sync,
      });
    }
    const s = pino.destination({ dest: t.path, append: true, mkdir: false, sync: this.sync });
    if (!this.sync) await new Promise<void>((resolve, reject) => {
      s.once('ready', () => resolve());
      s.once('error', reject);
    });
    return s;
  }

  private fail(err: Error): void {
    const first = !this.broken;
    this.broken = err;
    const s = this.stream;
    this.stream = undefined;
    if (s) {
      s.removeAllListeners('error');
      s.on('error', () => {});
      try {
        s.destroy();
      } catch {
        // already gone
      }
    }
    for (const w of this.drainWaiters.splice(0)) w();
    const now = Date.now();
    if (first || now - this.lastReport >= this.errorIntervalMs) {
      this.report(`cannot write ${this.name} ${this.path}: ${err.message}; lines are dropped until it works again (${this.dropped} so far; reported at most every ${this.errorIntervalMs / 1000} s)`);
    }
    if (this.target.kind === 'file' && !this.closed) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.openStream(), this.errorIntervalMs);
      this.retryTimer.unref();
    }
  }

  private report(message: string): void {
    this.lastReport = Date.now();
    try {
      writeSync(2, `corral: ${message}\n`);
    } catch {
      // stderr is gone too: nothing left to tell
    }
  }
}

function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
