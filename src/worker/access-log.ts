import { writeSync } from 'node:fs';
import { compileAccessFormat, type AccessRecord } from '../logging/access-format.js';
import type { Logger } from '../logging/logger.js';
import type { CorralResponse } from './response.js';

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

/** Writes a whole line to a blocking descriptor; a full pipe blocks (backpressure), never drops. */
export function writeLineSync(fd: number, line: string): void {
  const buf = Buffer.from(line);
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

/**
 * The access log and slow-request warnings. `logged` is called when the app ends the
 * response, before its last bytes reach the client, so a worker killed at any moment has
 * logged every request it answered; a request the client abandoned before the app answered
 * is logged at close with status 499.
 */
export function requestLogger(opts: RequestLogOptions): (res: CorralResponse, status: number) => void {
  const format = compileAccessFormat(opts.format);
  const pid = process.pid;
  const fd = opts.accessFd;
  return (res, status) => {
    const req = res.req;
    const durationMs = performance.now() - res.startedAt;
    if (fd !== undefined) {
      const rec: AccessRecord = {
        time: new Date(), method: req.method ?? '-', url: req.url ?? '-', httpVersion: req.httpVersion, status,
        bytes: res.bytesOut, durationMs, remoteAddr: req.socket.remoteAddress, requestId: res.requestId, pid,
        worker: opts.worker, reqHeaders: req.headers, res,
      };
      try {
        writeLineSync(fd, opts.prefix + format(rec) + '\n');
      } catch {
        // the master is gone (EPIPE): this worker is about to be stopped anyway
      }
    }
    if (opts.slowMs > 0 && durationMs > opts.slowMs) {
      opts.log.warn({ method: req.method, url: req.url, status, duration_ms: Math.round(durationMs), request_id: res.requestId }, `slow request: ${req.method} ${req.url} took ${Math.round(durationMs)} ms`);
    }
  };
}
