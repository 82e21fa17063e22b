import { writeSync } from 'node:fs';

/** What a report is about, as fields of its error-log line (the master looks for `logWrite`). */
export interface WriteFailureFields {
  logWrite: 'failed' | 'resumed';
  /** Lines dropped in this episode so far. */
  dropped: number;
}

/** Where a writer's failures are told; the text reads the same whoever tells it. */
export type FailureReporter = (message: string, fields: WriteFailureFields) => void;

/** The key the master's error log looks for in a worker's line, to tell stderr as well. */
export const LOG_WRITE_KEY = '"logWrite":"';

/**
 * The one drop-and-report policy of every log writer. A log that cannot be written (a full
 * disk, a reader gone) never stops serving: its lines are counted and dropped; the first
 * failure of an episode is reported at once, then at most once per interval while it lasts;
 * the file is tried again at that interval; the first write that works again ends the
 * episode with a report and the count of lines dropped.
 */
export class WriteFailures {
  private failing = false;
  private dropped = 0;
  private lastReport = -Infinity;
  private retryAt = 0;

  constructor(
    /** "access log", "error log". */
    private readonly what: string,
    private readonly intervalMs: number,
    private readonly report: FailureReporter,
  ) {}

  /** A write or an open failed; `lines` is how many lines it loses. */
  failed(where: string, err: Error, lines: number): void {
    const first = !this.failing;
    this.failing = true;
    this.dropped += lines;
    const now = performance.now();
    this.retryAt = now + this.intervalMs;
    if (!first && now - this.lastReport < this.intervalMs) return;
    this.lastReport = now;
    this.report(
      `cannot write ${this.what} ${where}: ${err.message}; lines are dropped until it works again (${this.dropped} so far; reported at most every ${this.intervalMs / 1000} s)`,
      { logWrite: 'failed', dropped: this.dropped },
    );
  }

  /** Lines not even tried (the file is closed until the next retry). */
  drop(lines: number): void {
    this.dropped += lines;
  }

  /** Whether a file that failed should be opened again now. */
  retryDue(): boolean {
    return performance.now() >= this.retryAt;
  }

  /** A write went through: ends an episode, if one was under way. */
  succeeded(where: string): void {
    if (!this.failing) return;
    this.failing = false;
    this.report(`${this.what} ${where} is writable again (${this.dropped} line(s) dropped meanwhile)`, { logWrite: 'resumed', dropped: this.dropped });
    this.dropped = 0;
    this.lastReport = -Infinity;
  }
}

/**
 * Tells the operator on stderr (the journal under systemd), where a failure of the log
 * files themselves can still be read.
 */
export function tellStderr(message: string): void {
  try {
    writeSync(2, `corral: ${message}\n`);
  } catch {
    // stderr is gone too: nothing left to tell
  }
}

/** How many lines `s` holds (its newlines). */
export function countLines(s: string | Buffer): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
