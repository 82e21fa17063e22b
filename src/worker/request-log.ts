import type { IncomingMessage } from 'node:http';
import { compileAccessFormat, type AccessRecord } from '../logging/access-format.js';
import type { Logger } from '../logging/logger.js';
import type { AccessBatch } from './access-log.js';
import { connectionOf } from './connection.js';
import { sentHeaders, type ProxyTrust } from '../proxies/forwarded.js';
import type { CorralResponse } from './response.js';
import type { RequestMetrics } from './metrics.js';
import { traceLogFields } from '../logging/trace-context.js';

interface RequestLogOptions {
  format: string;
  /** `<6>` when lines go to journald, else ''. */
  prefix: string;
  slowMs: number;
  worker: string;
  log: Logger;
  /** Counted once per request, where its line is produced. */
  metrics?: RequestMetrics;
  /** The trusted proxies, whose forwarding headers give the client's address; absent: the peer is the client. */
  trust?: ProxyTrust;
}

/** A request the HTTP parser refused or timed out before the app had it. */
export interface RefusedRequest {
  method: string;
  url: string;
  /** '' when the request line was not read. */
  httpVersion: string;
  status: number;
  startedAt: number;
  /** The connection's client address: a PROXY header's source, else the socket's peer. */
  remoteAddr: string | undefined;
  /** The socket's peer: the balancer on a PROXY protocol listener; undefined on a unix socket. */
  peerAddr: string | undefined;
  requestId: string;
}

/** An upgraded connection (a WebSocket, or another protocol the app took over), logged when it closes. */
export interface Tunnel {
  req: IncomingMessage;
  /** The status of the head the app answered with (101), or 499 when it wrote none. */
  status: number;
  /** Bytes sent to the client after the response's head. */
  bytesOut: number;
  /** Bytes received from the client after the request's head. */
  bytesIn: number;
  startedAt: number;
  /** As on RefusedRequest. */
  remoteAddr: string | undefined;
  peerAddr: string | undefined;
  requestId: string;
  /** A WebSocket's close code; undefined for another protocol or an upgrade refused. */
  wsClose: number | undefined;
}

const NO_HEADERS: readonly string[] = [];
const NO_RESPONSE = { getHeader: () => undefined };

/**
 * The access log, the request metrics and slow-request warnings: one record and one count per
 * request. A response is logged when it is ended, before its last bytes reach the client
 * (see AccessBatch); a request the client abandoned before the app answered is logged at
 * close with status 499.
 */
export class RequestLog {
  /** Absent when the access log is off: the format is compiled only when there is one. */
  private readonly write: ((rec: AccessRecord) => void) | undefined;
  private readonly pid = process.pid;
  /**
   * While the worker serves its own warm-up requests (warmup.ts), before it listens: they are
   * neither written to the access log nor counted, so both speak of clients only.
   */
  muted = false;

  constructor(private readonly opts: RequestLogOptions, batch: AccessBatch | undefined) {
    if (batch) {
      const format = compileAccessFormat(opts.format);
      this.write = (rec) => batch.add(opts.prefix + format(rec) + '\n');
    }
  }

  /**
   * Logs one response: `fromApp` when the app answered it (slow requests are warned about),
   * false when Node or corral answered a request the app had not (or a client error in its
   * body, answered by corral instead).
   */
  response(res: CorralResponse, status: number, fromApp: boolean): void {
    if (this.muted) return;
    const { opts } = this;
    const req = res.req;
    const durationMs = performance.now() - res.startedAt;
    opts.metrics?.record(req.method, status, durationMs / 1000, res.eventStream);
    if (this.write) {
      // The addresses as the connection was accepted: a 499's socket is gone by now. The walk
      // over forwarding headers starts at the connection's client address (a PROXY header's
      // source); peer_addr is the socket's peer (the balancer, on a PROXY listener).
      const conn = connectionOf(req.socket);
      const connAddr = conn ? conn.addr : req.socket?.remoteAddress;
      const peerAddr = conn ? conn.peer : req.socket?.remoteAddress;
      // What the client sent: apps (Next.js) rewrite req.headers while they serve.
      const rawHeaders = sentHeaders(req);
      this.write({
        time: new Date(), method: req.method ?? '-', url: req.url ?? '-', httpVersion: req.httpVersion, status,
        bytes: res.bytesOut, durationMs, remoteAddr: this.client(connAddr, rawHeaders), peerAddr, requestId: res.requestId,
        pid: this.pid, worker: opts.worker, rawHeaders, res,
      });
    }
    // An event stream is meant to last: it is not a slow request.
    if (fromApp && opts.slowMs > 0 && durationMs > opts.slowMs && !res.eventStream) {
      const fields = { method: req.method, url: req.url, status, duration_ms: Math.round(durationMs), request_id: res.requestId, ...traceLogFields(sentHeaders(req)) };
      opts.log.warn(fields, `slow request: ${req.method} ${req.url} took ${Math.round(durationMs)} ms`);
    }
  }

  /**
   * Logs and counts an upgraded connection when it closes, as nginx logs a tunnel: its
   * duration runs from the request's first byte to the close.
   */
  tunnel(t: Tunnel): void {
    const durationMs = performance.now() - t.startedAt;
    this.opts.metrics?.record(t.req.method, t.status, durationMs / 1000, true);
    if (!this.write) return;
    const rawHeaders = sentHeaders(t.req);
    this.write({
      time: new Date(), method: t.req.method ?? '-', url: t.req.url ?? '-', httpVersion: t.req.httpVersion, status: t.status,
      bytes: t.bytesOut, durationMs, remoteAddr: this.client(t.remoteAddr, rawHeaders), peerAddr: t.peerAddr, requestId: t.requestId,
      pid: this.pid, worker: this.opts.worker, rawHeaders, res: NO_RESPONSE, bytesIn: t.bytesIn, wsClose: t.wsClose,
    });
  }

  /** The client's address: the peer's, or the one its trusted proxies forwarded for. */
  private client(peer: string | undefined, raw: readonly string[]): string | undefined {
    return this.opts.trust ? this.opts.trust.client(peer, raw) : peer;
  }

  /** Logs and counts a request the parser refused or timed out. */
  refused(r: RefusedRequest): void {
    const durationMs = performance.now() - r.startedAt;
    this.opts.metrics?.record(r.method, r.status, durationMs / 1000);
    this.write?.({
      time: new Date(), method: r.method, url: r.url, httpVersion: r.httpVersion, status: r.status, bytes: 0,
      durationMs, remoteAddr: r.remoteAddr, peerAddr: r.peerAddr, requestId: r.requestId, pid: this.pid,
      worker: this.opts.worker, rawHeaders: NO_HEADERS, res: NO_RESPONSE,
    });
  }
}
