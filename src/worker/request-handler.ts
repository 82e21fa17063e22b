import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestId } from './request-id.js';
import type { Logger } from '../logging/logger.js';
import type { Handler } from './app-shape.js';
import { connectionOf } from './connection.js';
import type { ConnectionTracker } from './connections.js';
import type { RequestLog } from './request-log.js';
import { traceLogFields } from '../logging/trace-context.js';
import { sentHeaders } from '../proxies/forwarded.js';
import { BEGUN, CREATED, LOGGED, type CorralResponse, type EndHook } from './response.js';

interface RequestHandlerOptions {
  app: Handler;
  tracker: ConnectionTracker;
  log: Logger;
  /** The access log: once per response, at end (status as set) or at close (499 if unanswered). */
  requests: RequestLog;
  /** Called once per request after it is counted; used for max-requests. */
  onCount(served: number): void;
}

/**
 * Wraps the app's handler: counts and tracks the request (`begin`), gives it a request id (the
 * client's X-Request-Id, or one made here; echoed in the response), and turns a throw or a
 * rejected promise into a 500 (or a cut connection when headers were already sent). Every
 * response is logged once: when it is ended (`ended`, the servers' end hook), or when its
 * connection closes under it (`abandoned`).
 */
export class RequestHandler {
  private served = 0;

  constructor(private readonly opts: RequestHandlerOptions) {}

  /**
   * A request starts: counted, timed, tracked, given its id. The servers call this as they
   * emit 'request' (server.ts), before any listener runs, so a request answered by a listener
   * that is not corral's (engine.io's, which replaces a server's 'request' listeners) is
   * accounted for all the same.
   */
  readonly begin = (req: IncomingMessage, response: ServerResponse): void => {
    const res = response as CorralResponse;
    const conn = connectionOf(req.socket);
    if (conn) {
      // Timed from the request's first byte; the connection's next request starts afresh.
      res.startedAt = conn.began || performance.now();
      conn.began = 0;
      conn.res = res;
    } else {
      res.startedAt = performance.now();
    }
    res.phase = BEGUN;
    res.requestId = requestId(req);
    res.setHeader('x-request-id', res.requestId);
    this.opts.tracker.begin(res);
    this.opts.onCount(++this.served);
  };

  /** The servers' 'request' listener: calls the app (the request has begun). */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      const out = this.opts.app(req, res);
      if (out && typeof (out as Promise<unknown>).then === 'function') (out as Promise<unknown>).then(undefined, (err) => this.fail(err, req, res));
    } catch (err) {
      this.fail(err, req, res);
    }
  };

  /**
   * An Upgrade request, which never reaches `handle` (long-lived.ts tracks it): it counts as
   * one request for max-requests all the same.
   */
  countUpgrade(): void {
    this.opts.onCount(++this.served);
  }

  readonly ended: EndHook = (res) => {
    if (res.phase === BEGUN) {
      res.phase = LOGGED;
      this.opts.requests.response(res, res.statusCode, true);
      this.opts.tracker.done(res);
    } else if (res.phase === CREATED) {
      // Node answered before the handler (400 for an HTTP/1.1 request without Host, 417).
      res.phase = LOGGED;
      res.requestId = requestId(res.req);
      const conn = connectionOf(res.req.socket);
      res.startedAt = conn?.began || performance.now();
      if (conn) conn.began = 0;
      this.opts.requests.response(res, res.statusCode, false);
    }
  };

  /** Its connection closed before it was ended: the client went away, or the app destroyed it. */
  abandoned(res: CorralResponse): void {
    const conn = connectionOf(res.req.socket);
    if (conn?.res === res) conn.res = undefined;
    if (res.phase === BEGUN) {
      res.phase = LOGGED;
      this.opts.requests.response(res, res.headersSent ? res.statusCode : 499, true);
    }
  }

  private fail(err: unknown, req: IncomingMessage, res: ServerResponse): void {
    // The request's ids, so this line is found from its access line and from its trace.
    const ids = { request_id: (res as CorralResponse).requestId, ...traceLogFields(sentHeaders(req)) };
    this.opts.log.error({ err, method: req.method, url: req.url, ...ids }, 'request handler failed');
    if (!res.headersSent) {
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain');
      res.end('Internal Server Error\n');
    } else {
      res.destroy();
    }
  }
}
