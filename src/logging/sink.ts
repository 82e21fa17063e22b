import type { Target } from './destinations.js';
import { LineWriter } from './line-writer.js';
import { LogFiles, type Rotation } from './log-files.js';
import { tellStderr } from './write-failures.js';

/**
 * The master's writer of the error log: the same LineWriter the workers use for access
 * lines (synchronous whole-line writes, O_APPEND, the same drop-and-report policy), and the
 * same LogFiles rotation as the access log. As the master is this file's only writer, it
 * looks at rotation itself before each write instead of in the master loop: a time
 * rotation therefore happens with the period's first line. Its write failures can only be
 * told on stderr.
 */
export class Sink {
  private readonly writer: LineWriter;
  private readonly files: LogFiles | undefined;
  /** The error log is stderr itself: telling stderr again would say it twice. */
  readonly isStderr: boolean;

  constructor(what: string, target: Exclude<Target, { kind: 'off' }>, opts: { rotation: Rotation; errorIntervalMs: number }) {
    const policy = { what, errorIntervalMs: opts.errorIntervalMs, report: tellStderr };
    this.isStderr = target.kind === 'std' && target.fd === 2;
    if (target.kind === 'std') {
      this.writer = new LineWriter({ kind: 'stream', fd: target.fd }, policy);
      return;
    }
    const files = new LogFiles(target.path, opts.rotation);
    this.files = files.rotates ? files : undefined;
    this.writer = new LineWriter({ kind: 'file', path: files.current }, policy);
  }

  /** Writes whole lines. */
  write(lines: string): void {
    const next = this.files?.due(Date.now(), performance.now());
    if (next !== undefined) this.writer.reopen(next);
    const bytes = this.writer.write(lines);
    this.files?.wrote(bytes);
  }

  /** USR1: reopen the file by name (logrotate moved it away). */
  reopen(): void {
    this.writer.reopen();
  }

  /** A promise for the callers that wait for the log to be flushed: the writes are synchronous, so it already is. */
  close(): Promise<void> {
    this.writer.close();
    return Promise.resolve();
  }
}
