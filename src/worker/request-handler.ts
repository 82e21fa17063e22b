import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logging/logger.js';
import type { Handler } from './app-loader.js';
import type { ConnectionTracker } from './connections.js';
import { setEndHook, type CorralResponse } from './response.js';

export interface RequestHooks {
  /** Called once per request after it is counted; used for max-requests. */
  onCount(served: number): void;
  /** The access log: once per request, at end (status as set) or at close (499 if unanswered). */
  logged(res: CorralResponse, status: number): void;
}

const VALID_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Wraps the app's handler: counts and tracks the request, gives it a request id (the
 * client's X-Request-Id, or a new UUID; echoed in the response), and turns a throw or a
 * rejected promise into a 500 (or a cut connection when headers were already sent).
 */
export function wrapHandler(app: Handler, tracker: ConnectionTracker, log: Logger, hooks: RequestHooks): Handler {
  let served = 0;
  const { logged, onCount } = hooks;
  setEndHook((res) => logged(res, res.statusCode));
  function onClose(this: CorralResponse) {
    tracker.done(this);
    if (!this.ended) {
      this.ended = true;
      logged(this, this.headersSent ? this.statusCode : 499);
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
    res.startedAt = performance.now();
    const incoming = req.headers['x-request-id'];
    res.requestId = typeof incoming === 'string' && VALID_ID.test(incoming) ? incoming : randomUUID();
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
