import { compileAccessFormat, type AccessRecord } from '../logging/access-format.js';
import type { Logger } from '../logging/logger.js';
import type { AccessBatch } from './access-log.js';
import { connInfo } from './conn-info.js';
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

/**
 * Logs one response: `fromApp` when the app answered it (slow requests are warned about),
 * false when Node or corral answered a request the app never had.
 */
export type ResponseLog = (res: CorralResponse, status: number, fromApp: boolean) => void;

/** A request the HTTP parser refused or timed out before the app had it. */
export interface RefusedRequest {
  method: string;
  url: string;
  /** '' when the request line was not read. */
  httpVersion: string;
  status: number;
  startedAt: number;
  remoteAddr: string | undefined;
  requestId: string;
}

const NO_HEADERS: readonly string[] = [];
const NO_RESPONSE = { getHeader: () => undefined };

let refusedWriter: ((r: RefusedRequest) => void) | undefined;
let responseLog: ResponseLog | undefined;

/**
 * The access log and slow-request warnings. The response log is called when the response is
 * ended, before its last bytes reach the client (see AccessBatch); a request the client
 * abandoned before the app answered is logged at close with status 499.
 */
export function requestLogger(opts: RequestLogOptions, batch: AccessBatch | undefined /* access log off */): ResponseLog {
  // The format is compiled only when there is an access log to write.
  const write = batch && lineWriter(opts, batch);
  const metrics = opts.metrics;
  refusedWriter = (r) => {
    const durationMs = performance.now() - r.startedAt;
    metrics?.record(r.method, r.status, durationMs / 1000);
    write?.({
      time: new Date(), method: r.method, url: r.url, httpVersion: r.httpVersion, status: r.status, bytes: 0,
      durationMs, remoteAddr: r.remoteAddr, requestId: r.requestId, pid: process.pid,
      worker: opts.worker, rawHeaders: NO_HEADERS, res: NO_RESPONSE,
    });
  };
  const pid = process.pid;
  return (responseLog = (res, status, fromApp) => {
    const req = res.req;
    const durationMs = performance.now() - res.startedAt;
    metrics?.record(req.method, status, durationMs / 1000);
    if (write) {
      // The peer's address as the connection was accepted: a 499's socket is gone by now.
      const remoteAddr = connInfo(req.socket)?.addr ?? req.socket?.remoteAddress;
      write({
        time: new Date(), method: req.method ?? '-', url: req.url ?? '-', httpVersion: req.httpVersion, status,
        bytes: res.bytesOut, durationMs, remoteAddr, requestId: res.requestId, pid, worker: opts.worker,
        // What the client sent: apps (Next.js) rewrite req.headers while they serve.
        rawHeaders: req.rawHeaders, res,
      });
    }
    if (fromApp && opts.slowMs > 0 && durationMs > opts.slowMs) {
      opts.log.warn({ method: req.method, url: req.url, status, duration_ms: Math.round(durationMs), request_id: res.requestId }, `slow request: ${req.method} ${req.url} took ${Math.round(durationMs)} ms`);
    }
  });
}

/** Logs a request the app has, answered by corral instead (a client error in its body). */
export function logAnswered(res: CorralResponse, status: number): void {
  responseLog?.(res, status, false);
}

/** Logs and counts a request the parser refused or timed out. */
export function logRefused(r: RefusedRequest): void {
  refusedWriter?.(r);
}

function lineWriter(opts: RequestLogOptions, batch: AccessBatch): (rec: AccessRecord) => void {
  const format = compileAccessFormat(opts.format);
  return (rec) => batch.add(opts.prefix + format(rec) + '\n');
}
