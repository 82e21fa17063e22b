import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { countLines, WriteFailures, type FailureReporter } from './write-failures.js';

/**
 * The kernel makes a write to a pipe atomic up to PIPE_BUF (4096 bytes on Linux, pipe(7));
 * journald's stream socket is read line by line, and a unix stream write that fits one
 * buffer is not split either. Lines of several writers sharing one stream therefore go out
 * in writes no larger than this, cut at line boundaries.
 */
const PIPE_BUF = 4096;

/** How long a writer waits on a full non-blocking descriptor before trying again (ms). */
const EAGAIN_WAIT_MS = 1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** A file (opened by name, reopened on rotation) or a descriptor the process was given. */
export type LineTarget = { kind: 'file'; path: string } | { kind: 'stream'; fd: number };

export interface LineWriterPolicy {
  /** "access log", "error log": the name in reports. */
  what: string;
  /** How often a failing destination is reported (and a file reopened), in ms. */
  errorIntervalMs: number;
  report: FailureReporter;
}

/** write(2) as fs.writeSync calls it; replaced only by tests that need a short write. */
export type WriteFn = (fd: number, buf: Buffer, offset: number, length: number) => number;

/**
 * The writer of one log destination, used by the master for the error log and by each
 * worker for its access lines: a file, opened with O_APPEND (every write lands at the end,
 * whole, whoever else appends), or a stream the process inherited (journald, a pipe, a
 * terminal). Takes whole lines only. Writes are synchronous: a full stream blocks the
 * writer (backpressure) and never drops a line. A destination that fails (a full disk)
 * follows WriteFailures' policy. A file never keeps a partial line: the fragment of a write
 * the disk cut short is removed at once (see `unwrite`).
 */
export class LineWriter {
  private fd = -1;
  private path: string | undefined;
  /** The destination may end in the middle of a line: the next write starts with a newline. */
  private torn = false;
  private readonly failures: WriteFailures;

  constructor(
    dest: LineTarget,
    policy: LineWriterPolicy,
    private readonly writeFn: WriteFn = writeSync,
  ) {
    this.failures = new WriteFailures(policy.what, policy.errorIntervalMs, policy.report);
    if (dest.kind === 'stream') this.fd = dest.fd;
    else this.open(dest.path);
  }

  /** Reopens the file by name (logrotate moved it), or opens the file the master names (built-in rotation). */
  reopen(path?: string): void {
    if (this.path === undefined) return;
    const old = this.fd;
    this.fd = -1;
    this.open(path ?? this.path);
    if (old >= 0) closeQuietly(old);
  }

  close(): void {
    if (this.path !== undefined && this.fd >= 0) closeQuietly(this.fd);
    this.fd = -1;
  }

  /** Writes whole lines (the string ends with a newline); returns the bytes written. */
  write(lines: string): number {
    if (this.fd < 0) {
      if (this.path !== undefined && this.failures.retryDue()) this.open(this.path);
      if (this.fd < 0) {
        this.failures.drop(countLines(lines));
        return 0;
      }
    }
    const repair = this.torn && (this.path === undefined || endsMidLine(this.fd)) ? '\n' : '';
    this.torn = false;
    const buf = Buffer.from(repair + lines);
    try {
      if (this.path === undefined && buf.length > PIPE_BUF) this.writeInPieces(buf);
      else this.writeAll(buf, 0, buf.length);
    } catch (err) {
      return this.fail(err as WriteError, buf, repair.length);
    }
    this.failures.succeeded(this.where());
    return buf.length;
  }

  private writeInPieces(buf: Buffer): void {
    let start = 0;
    while (start < buf.length) {
      let end = Math.min(buf.length, start + PIPE_BUF);
      if (end < buf.length) {
        const cut = buf.lastIndexOf(0x0a, end - 1);
        // A single line longer than PIPE_BUF goes out whole: it cannot be made atomic.
        end = cut >= start ? cut + 1 : buf.indexOf(0x0a, end) + 1 || buf.length;
      }
      this.writeAll(buf, start, end);
      start = end;
    }
  }

  /** write(2) until every byte is out; EAGAIN (a non-blocking pipe that is full) waits. */
  private writeAll(buf: Buffer, start: number, end: number): void {
    let off = start;
    while (off < end) {
      try {
        off += this.writeFn(this.fd, buf, off, end - off);
      } catch (err) {
        const e = err as WriteError;
        if (e.code === 'EAGAIN') {
          Atomics.wait(sleeper, 0, 0, EAGAIN_WAIT_MS);
          continue;
        }
        e.written = off;
        throw e;
      }
    }
  }

  /** Reports a failed write; returns the bytes it left in the destination. */
  private fail(err: WriteError, buf: Buffer, repairLength: number): number {
    const written = err.written ?? 0;
    // Whole lines that went out stay; the bytes after the last newline that did are a fragment.
    const cut = written > 0 ? buf.lastIndexOf(0x0a, written - 1) + 1 : 0;
    let left = cut;
    if (written > cut) {
      this.torn = !this.unwrite(buf.subarray(cut, written));
      if (this.torn) left = written;
    } else if (written < repairLength) this.torn = true;
    this.failures.failed(this.where(), err, countLines(buf.subarray(Math.max(cut, repairLength))));
    if (this.path !== undefined && this.fd >= 0) {
      closeQuietly(this.fd);
      this.fd = -1;
    }
    return left;
  }

  /**
   * Removes the fragment a write left at the end of the file, so no line, this writer's or
   * another worker's appending to the same file, is ever glued to it. Removing it at once
   * is the only choice that holds for every writer: finishing it (or ending it with a
   * newline) on this writer's next write would come too late if another worker wrote first
   * when space returned. The fragment is removed only if the file still ends with exactly
   * its bytes; if not (or for a stream), the next write starts on a new line instead.
   */
  private unwrite(fragment: Buffer): boolean {
    if (this.path === undefined) return false;
    try {
      const size = fstatSync(this.fd).size;
      if (size < fragment.length) return false;
      const tail = Buffer.alloc(fragment.length);
      if (readSync(this.fd, tail, 0, tail.length, size - tail.length) !== tail.length || !tail.equals(fragment)) return false;
      ftruncateSync(this.fd, size - fragment.length);
      return true;
    } catch {
      return false;
    }
  }

  private open(path: string): void {
    this.path = path;
    try {
      // a+ (read and append): reading the last byte tells whether the file ends mid-line.
      this.fd = openSync(path, 'a+');
      // A file that ends mid-line (a writer killed while it was cut short) gets its newline first.
      this.torn ||= endsMidLine(this.fd);
    } catch (err) {
      this.fd = -1;
      this.failures.failed(path, err as Error, 0);
    }
  }

  private where(): string {
    return this.path ?? `fd ${this.fd}`;
  }
}

/** A failed write; `written`: the offset in its buffer up to which bytes had gone out. */
type WriteError = NodeJS.ErrnoException & { written?: number };

function endsMidLine(fd: number): boolean {
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const b = Buffer.alloc(1);
    return readSync(fd, b, 0, 1, size - 1) === 1 && b[0] !== 0x0a;
  } catch {
    // not readable (opened for append only on an odd file system): nothing to repair
    return false;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
