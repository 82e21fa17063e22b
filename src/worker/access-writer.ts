import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import type { AccessDestination } from '../ipc/messages.js';

/**
 * The kernel makes a write to a pipe atomic up to PIPE_BUF (4096 bytes on Linux, pipe(7));
 * journald's stream socket is read line by line, and a unix stream write that fits one
 * buffer is not split either. Lines of several workers sharing one stream therefore go out
 * in writes no larger than this, cut at line boundaries.
 */
export const PIPE_BUF = 4096;

/** How long a writer waits on a full non-blocking descriptor before trying again (ms). */
const EAGAIN_WAIT_MS = 1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export interface WriterHooks {
  /** A write error, reported at most once per interval by the caller's policy. */
  report(message: string): void;
  /** How often a failing destination is reported (and a file reopened), in ms. */
  errorIntervalMs: number;
}

/**
 * One worker's own writer to the access log's destination: the file, opened with O_APPEND
 * (every write lands at the end, whole, whoever else appends), or the stream the master
 * inherited (journald, a pipe, a terminal), passed down as a descriptor. Writes are
 * synchronous: a full destination blocks this worker (backpressure) and never drops a line.
 * A destination that fails (a full disk) is reported, its lines meanwhile are counted and
 * dropped, and a file is reopened; the first line after a torn write starts on a new line.
 */
export class AccessWriter {
  private fd = -1;
  private path: string | undefined;
  private broken = false;
  /** A write stopped part-way: the file may end in the middle of a line. */
  private torn = false;
  private dropped = 0;
  private lastReport = -Infinity;
  private retryAt = 0;

  constructor(
    dest: AccessDestination,
    private readonly hooks: WriterHooks,
  ) {
    if (dest.kind === 'stream') this.fd = dest.fd;
    else this.open(dest.path);
  }

  get isFile(): boolean {
    return this.path !== undefined;
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

  /** Writes whole lines (the string ends with a newline). */
  write(lines: string): void {
    if (this.fd < 0) {
      if (this.path !== undefined && performance.now() >= this.retryAt) this.open(this.path);
      if (this.fd < 0) return this.drop(lines);
    }
    if (this.torn) lines = this.newlineIfTorn() + lines;
    try {
      if (this.path === undefined && Buffer.byteLength(lines) > PIPE_BUF) this.writeInPieces(lines);
      else writeAll(this.fd, Buffer.from(lines));
    } catch (err) {
      return this.fail(err as WriteError, lines);
    }
    if (this.broken) {
      this.broken = false;
      this.hooks.report(`access log ${this.where()} is writable again (${this.dropped} line(s) dropped meanwhile)`);
      this.dropped = 0;
    }
  }

  private writeInPieces(lines: string): void {
    const buf = Buffer.from(lines);
    let start = 0;
    while (start < buf.length) {
      let end = Math.min(buf.length, start + PIPE_BUF);
      if (end < buf.length) {
        const cut = buf.lastIndexOf(0x0a, end - 1);
        // A single line longer than PIPE_BUF goes out whole: it cannot be made atomic.
        end = cut >= start ? cut + 1 : buf.indexOf(0x0a, end) + 1 || buf.length;
      }
      writeAll(this.fd, buf.subarray(start, end));
      start = end;
    }
  }

  private open(path: string): void {
    this.path = path;
    try {
      // a+ (read and append): reading the last byte tells whether the file ends mid-line.
      this.fd = openSync(path, 'a+');
      // A file that ends mid-line (an earlier writer stopped by a full disk) gets its newline first.
      this.torn ||= endsMidLine(this.fd);
    } catch (err) {
      this.fd = -1;
      this.fail(err as NodeJS.ErrnoException, '');
    }
  }

  private newlineIfTorn(): string {
    this.torn = false;
    return this.path !== undefined && endsMidLine(this.fd) ? '\n' : '';
  }

  private fail(err: WriteError, lines: string): void {
    const first = !this.broken;
    this.broken = true;
    if (err.partial) this.torn = true;
    this.drop(lines);
    const now = performance.now();
    if (first || now - this.lastReport >= this.hooks.errorIntervalMs) {
      this.lastReport = now;
      this.hooks.report(`cannot write access log ${this.where()}: ${err.message}; lines are dropped until it works again (${this.dropped} so far; reported at most every ${this.hooks.errorIntervalMs / 1000} s)`);
    }
    if (this.path !== undefined && this.fd >= 0) {
      closeQuietly(this.fd);
      this.fd = -1;
    }
    this.retryAt = now + this.hooks.errorIntervalMs;
  }

  private drop(lines: string): void {
    for (let i = lines.indexOf('\n'); i >= 0; i = lines.indexOf('\n', i + 1)) this.dropped++;
  }

  private where(): string {
    return this.path ?? `fd ${this.fd}`;
  }
}

/** A failed write; `partial` when some bytes of it had gone out. */
type WriteError = NodeJS.ErrnoException & { partial?: boolean };

/** write(2) until every byte is out; EAGAIN (a non-blocking pipe that is full) waits. */
function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      const e = err as WriteError;
      if (e.code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, EAGAIN_WAIT_MS);
        continue;
      }
      if (off > 0) e.partial = true;
      throw e;
    }
  }
}

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
