import { Socket } from 'node:net';
import type { LineWriter } from '../logging/line-writer.js';

type WriteFn = (this: Socket, data: unknown, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void;
type WritevFn = (this: Socket, chunks: unknown, cb: (err?: Error | null) => void) => void;
const socketWrite = (Socket.prototype as unknown as { _write: WriteFn })._write;
const socketWritev = (Socket.prototype as unknown as { _writev: WritevFn })._writev;

/**
 * The worker's access lines of one event-loop turn, written to the destination in one write
 * (a file opened with O_APPEND: whole lines of several workers never interleave).
 *
 * The guarantee "a request's line is written before its response's bytes reach the client"
 * is kept by holding socket writes, not responses: while lines are pending, a connection's
 * write to the kernel is queued (from the stream's view it is merely in progress, so the
 * response and socket keep their usual states and events) and released right after the
 * lines are written, in the same turn. A worker killed at any moment has thus logged every
 * response a client received, and it makes one write(2) per turn instead of one per line.
 */
export class AccessBatch {
  private pending = '';
  private readonly held: Array<() => void> = [];
  private scheduled = false;
  private readonly flushNow = () => this.flush();

  constructor(private readonly writer: Pick<LineWriter, 'write'>) {}

  add(line: string): void {
    this.pending += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Holds this connection's writes while lines are pending. */
  hold(socket: Socket): void {
    const batch = this;
    const s = socket as unknown as { _write: WriteFn; _writev: WritevFn };
    s._write = function (data, encoding, cb) {
      if (batch.pending === '') return socketWrite.call(this, data, encoding, cb);
      batch.held.push(() => socketWrite.call(this, data, encoding, cb));
    };
    s._writev = function (chunks, cb) {
      if (batch.pending === '') return socketWritev.call(this, chunks, cb);
      batch.held.push(() => socketWritev.call(this, chunks, cb));
    };
  }

  flush(): void {
    this.scheduled = false;
    const lines = this.pending;
    this.pending = '';
    if (lines !== '') this.writer.write(lines);
    const held = this.held.splice(0);
    for (const release of held) release();
  }
}
