import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logging/logger.js';
import type { Handler } from './app-loader.js';
import { connInfo } from './conn-info.js';
import type { ConnectionTracker } from './connections.js';
import type { ResponseLog } from './request-log.js';
import { BEGUN, CREATED, LOGGED, setEndHook, type CorralResponse } from './response.js';

export interface RequestHooks {
  /** Called once per request after it is counted; used for max-requests. */
  onCount(served: number): void;
  /** The access log: once per response, at end (status as set) or at close (499 if unanswered). */
  logged: ResponseLog;
}

const VALID_ID = /^[\x21-\x7e]{1,200}$/;

function requestId(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && VALID_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Wraps the app's handler: counts and tracks the request, gives it a request id (the
 * client's X-Request-Id, or a new UUID; echoed in the response), and turns a throw or a
 * rejected promise into a 500 (or a cut connection when headers were already sent).
 */
export function wrapHandler(app: Handler, tracker: ConnectionTracker, log: Logger, hooks: RequestHooks): Handler {
  let served = 0;
  const { logged, onCount } = hooks;
  setEndHook((res) => {
    if (res.phase === BEGUN) {
      res.phase = LOGGED;
      logged(res, res.statusCode, true);
    } else if (res.phase === CREATED) {
      // Node answered before the handler (400 for an HTTP/1.1 request without Host, 417).
      res.phase = LOGGED;
      res.requestId = requestId(res.req);
      const info = connInfo(res.req.socket);
      res.startedAt = info?.began || performance.now();
      if (info) info.began = 0;
      logged(res, res.statusCode, false);
    }
  });
  function onClose(this: CorralResponse) {
    tracker.done(this);
    const info = connInfo(this.req.socket);
    if (info?.res === this) info.res = undefined;
    if (this.phase === BEGUN) {
      this.phase = LOGGED;
      logged(this, this.headersSent ? this.statusCode : 499, true);
    }
  }
  const fail = (err: unknown, req: IncomingMessage, res: ServerResponse) => {
    log.error({ err, method: req.method, url: req.url }, 'request handler failed');
    if (!res.headersSent) {
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain');
      res.end('Internal Server Error\n');
    } else {
      res.destroy();
    }
  };
  return (req, response) => {
    const res = response as CorralResponse;
    const info = connInfo(req.socket);
    if (info) {
      // Timed from the request's first byte; the connection's next request starts afresh.
      res.startedAt = info.began || performance.now();
      info.began = 0;
      info.res = res;
    } else {
      res.startedAt = performance.now();
    }
    res.phase = BEGUN;
    res.requestId = requestId(req);
    res.setHeader('x-request-id', res.requestId);
    tracker.begin(res);
    res.on('close', onClose);
    onCount(++served);
    try {
      const out = app(req, res);
      if (out && typeof (out as Promise<unknown>).then === 'function') (out as Promise<unknown>).then(undefined, (err) => fail(err, req, res));
    } catch (err) {
      fail(err, req, res);
    }
  };
}
