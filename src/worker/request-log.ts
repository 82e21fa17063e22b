import { compileAccessFormat, type AccessRecord } from '../logging/access-format.js';
import type { Logger } from '../logging/logger.js';
import type { AccessBatch } from './access-log.js';
import type { CorralResponse } from './response.js';

export interface RequestLogOptions {
  format: string;
  /** `<6>` when lines go to journald, else ''. */
  prefix: string;
  slowMs: number;
  worker: string;
  log: Logger;
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
