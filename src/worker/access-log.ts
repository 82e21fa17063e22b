import { randomUUID } from 'node:crypto';
import { writeSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { compileAccessFormat, type AccessRecord } from '../logging/access-format.js';
import type { Logger } from '../logging/logger.js';

export interface RequestLogOptions {
  /** Descriptor of the access channel to the master, or undefined when the access log is off. */
  accessFd: number | undefined;
  format: string;
  /** `<6>` when lines go to journald, else ''. */
  prefix: string;
  slowMs: number;
  worker: string;
  log: Logger;
}

const VALID_ID = /^[\x21-\x7e]{1,200}$/;

/** Writes a whole line to a blocking descriptor; a full pipe blocks (backpressure), never drops. */
export function writeLineSync(fd: number, line: string): void {
  const buf = Buffer.from(line);
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

function byteLength(chunk: unknown, encoding?: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/**
 * Per request: takes or makes the request id (X-Request-Id, echoed in the response), counts
 * body bytes, and writes the access line when the app ends the response, before the last
 * bytes reach the client: a worker killed at any moment has logged every request it answered.
 * A request the client abandoned before the app answered is logged with status 499.
 */
export function requestLogger(opts: RequestLogOptions) {
  const format = compileAccessFormat(opts.format);
  const pid = process.pid;
  return (req: IncomingMessage, res: ServerResponse, startedAt: number): void => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && VALID_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('x-request-id', requestId);
    let bytes = 0;
    let logged = false;
    const finish = (status: number) => {
      if (logged) return;
      logged = true;
      const durationMs = performance.now() - startedAt;
      if (opts.accessFd !== undefined) {
        const rec: AccessRecord = {
          time: new Date(), method: req.method ?? '-', url: req.url ?? '-', httpVersion: req.httpVersion, status, bytes, durationMs,
          remoteAddr: req.socket.remoteAddress, requestId, pid, worker: opts.worker,
          reqHeader: (name) => headerText(req.headers[name]),
          resHeader: (name) => headerText(res.getHeader(name)),
        };
        try {
          writeLineSync(opts.accessFd, opts.prefix + format(rec) + '\n');
        } catch {
          // the master is gone (EPIPE): this worker is about to be stopped anyway
        }
      }
      if (opts.slowMs > 0 && durationMs > opts.slowMs) {
        opts.log.warn({ method: req.method, url: req.url, status, duration_ms: Math.round(durationMs), request_id: requestId }, `slow request: ${req.method} ${req.url} took ${Math.round(durationMs)} ms`);
      }
    };
    const write = res.write;
    const end = res.end;
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      bytes += byteLength(chunk, rest[0]);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof res.write;
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (typeof chunk !== 'function') bytes += byteLength(chunk, rest[0]);
      finish(res.statusCode);
      return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } as typeof res.end;
    res.once('close', () => finish(res.headersSent ? res.statusCode : 499));
  };
}

function headerText(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}
