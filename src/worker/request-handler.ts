import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logging/logger.js';
import type { Handler } from './app-loader.js';
import type { ConnectionTracker } from './connections.js';

export interface RequestHooks {
  /** Called once per request after it is counted; used for max-requests. */
  onCount(served: number): void;
  /** Called before the app sees the request (request id, access log). */
  begin(req: IncomingMessage, res: ServerResponse, startedAt: number): void;
}

/**
 * Wraps the app's handler: counts and tracks the request, and turns a throw or a rejected
 * promise into a 500 (or a cut connection when headers were already sent) plus an error line.
 */
export function wrapHandler(app: Handler, tracker: ConnectionTracker, log: Logger, hooks: RequestHooks): Handler {
  let served = 0;
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
  return (req, res) => {
    const startedAt = performance.now();
    tracker.begin(req, res);
    hooks.begin(req, res, startedAt);
    hooks.onCount(++served);
    try {
      const out = app(req, res);
      if (out && typeof (out as Promise<unknown>).then === 'function') (out as Promise<unknown>).then(undefined, (err) => fail(err, req, res));
    } catch (err) {
      fail(err, req, res);
    }
  };
}
