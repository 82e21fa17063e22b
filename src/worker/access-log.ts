import type { Server } from 'node:http';
import { Socket } from 'node:net';
import { compileAccessFormat, type AccessRecord } from '../logging/access-format.js';
import type { Logger } from '../logging/logger.js';
import type { AccessWriter } from './access-writer.js';
import type { CorralResponse } from './response.js';
import type { RequestMetrics } from './metrics.js';

export interface RequestLogOptions {
  format: string;
  /** `<6>` when lines go to journald, else ''. */
  prefix: string;
  slowMs: number;
  worker: string;
  log: Logger;
  /** Counted once per request, where its line is produced. */
  metrics?: RequestMetrics;
}

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

  constructor(private readonly writer: AccessWriter) {}

  add(line: string): void {
    this.pending += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Holds this server's connection writes while lines are pending. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.hold(socket));
  }

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

/**
 * The access log and slow-request warnings. `logged` is called when the app ends the
 * response, before its last bytes reach the client (see AccessBatch); a request the client
 * abandoned before the app answered is logged at close with status 499.
 */
export function requestLogger(opts: RequestLogOptions, batch: AccessBatch | undefined /* access log off */): (res: CorralResponse, status: number) => void {
  // The format is compiled only when there is an access log to write.
  const write = batch && accessWriter(opts, batch);
  return (res, status) => {
    const req = res.req;
    const durationMs = performance.now() - res.startedAt;
    opts.metrics?.record(req.method, status, durationMs / 1000);
    write?.(res, status, durationMs);
    if (opts.slowMs > 0 && durationMs > opts.slowMs) {
      opts.log.warn({ method: req.method, url: req.url, status, duration_ms: Math.round(durationMs), request_id: res.requestId }, `slow request: ${req.method} ${req.url} took ${Math.round(durationMs)} ms`);
    }
  };
}

function accessWriter(opts: RequestLogOptions, batch: AccessBatch): (res: CorralResponse, status: number, durationMs: number) => void {
  const format = compileAccessFormat(opts.format);
  const pid = process.pid;
  return (res, status, durationMs) => {
    const req = res.req;
    const rec: AccessRecord = {
      time: new Date(), method: req.method ?? '-', url: req.url ?? '-', httpVersion: req.httpVersion, status,
      bytes: res.bytesOut, durationMs, remoteAddr: req.socket.remoteAddress, requestId: res.requestId, pid,
      worker: opts.worker, reqHeaders: req.headers, res,
    };
    batch.add(opts.prefix + format(rec) + '\n');
  };
}
