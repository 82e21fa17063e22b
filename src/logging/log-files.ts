import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

export interface Rotation {
  /** Start a new file at this size in bytes (0: never by size). */
  size: number;
  interval: 'off' | 'hourly' | 'daily';
  /** Rotated files kept besides the current one. */
  keep: number;
}

/**
 * How often the size of the current file is looked at (one stat(2)): a file may outgrow
 * `size` by what is written in this time.
 */
const SIZE_CHECK_MS = 100;

/**
 * The files of one log as the master decides them, for both logs: the access log (the
 * workers write, the master only says which file) and the error log (the master's Sink
 * writes). Without built-in rotation that is the configured path, for ever (logrotate
 * renames it and USR1 makes every writer reopen the name). With it, files are numbered
 * (access.1.log, access.2.log, ...; the highest number is the current one): when the current
 * file reaches `size`, or an hour or a day begins, the next number becomes current, the
 * writers reopen there, and numbers older than `keep` are deleted. Lines written before a
 * writer reopens land in the previous file: nothing is lost. Numbering continues across
 * restarts.
 */
export class LogFiles {
  private n: number;
  private period: number;
  private nextSizeCheck = 0;
  /** The current file's size as last looked at, plus what its one writer wrote since. */
  private size = 0;
  private readonly dir: string;
  private readonly stem: string;
  private readonly ext: string;

  constructor(
    private readonly base: string,
    private readonly rotation: Rotation,
    nowMs = Date.now(),
  ) {
    this.dir = dirname(base);
    this.ext = extname(base);
    this.stem = basename(base, this.ext);
    this.n = this.rotates ? Math.max(1, ...this.numbers()) : 0;
    if (this.rotates) this.size = sizeOf(this.current);
    this.period = periodOf(rotation.interval, nowMs);
  }

  get rotates(): boolean {
    return this.rotation.size > 0 || this.rotation.interval !== 'off';
  }

  /** The file to write now. */
  get current(): string {
    return this.rotates ? this.numbered(this.n) : this.base;
  }

  /** When the master loop should next call `due` (monotonic ms), or Infinity. */
  nextCheckAt(): number {
    return this.rotation.size > 0 ? this.nextSizeCheck : Infinity;
  }

  /**
   * A log with one writer (the error log: the master's Sink) says what it wrote: the size
   * is looked at as soon as it may have reached `size`, so that file outgrows it by one
   * write at most. The workers' access log has many writers and relies on the periodic look.
   */
  wrote(bytes: number): void {
    this.size += bytes;
    if (this.rotation.size > 0 && this.size >= this.rotation.size) this.nextSizeCheck = 0;
  }

  /** Called by the master loop (and the Sink): the new current file when it is time to rotate, else undefined. */
  due(nowMs: number, monotonicMs: number): string | undefined {
    if (!this.rotates) return undefined;
    let rotate = false;
    const period = periodOf(this.rotation.interval, nowMs);
    if (period !== this.period) {
      this.period = period;
      rotate = sizeOf(this.current) > 0;
    }
    if (!rotate && this.rotation.size > 0 && monotonicMs >= this.nextSizeCheck) {
      this.nextSizeCheck = monotonicMs + SIZE_CHECK_MS;
      this.size = sizeOf(this.current);
      rotate = this.size >= this.rotation.size;
    }
    if (!rotate) return undefined;
    this.n++;
    this.size = sizeOf(this.current);
    this.prune();
    return this.current;
  }

  private numbered(n: number): string {
    return join(this.dir, `${this.stem}.${n}${this.ext}`);
  }

  /** The numbers of this log's rotated files present in its directory. */
  private numbers(): number[] {
    const re = new RegExp(`^${escapeRe(this.stem)}\\.(\\d+)${escapeRe(this.ext)}$`);
    try {
      return readdirSync(this.dir).flatMap((f) => {
        const m = re.exec(f);
        return m ? [Number(m[1])] : [];
      });
    } catch {
      return [];
    }
  }

  private prune(): void {
    const oldest = this.n - this.rotation.keep;
    for (const n of this.numbers()) {
      if (n >= oldest) continue;
      try {
        unlinkSync(this.numbered(n));
      } catch {
        // already gone
      }
    }
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Which hour or day (local time) a moment falls in; 0 when rotation by time is off. */
function periodOf(interval: Rotation['interval'], ms: number): number {
  if (interval === 'off') return 0;
  const d = new Date(ms);
  if (interval === 'daily') return d.getFullYear() * 10_000 + (d.getMonth() + 1) * 100 + d.getDate();
  return Math.floor(ms / 3_600_000);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
