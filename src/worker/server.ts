import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { WorkerSpec } from '../ipc/messages.js';
import type { AccessBatch } from './access-log.js';
import { clientErrorListener } from './client-errors.js';
import { accept } from './connection.js';
import type { ConnectionTracker } from './connections.js';
import type { RequestHandler } from './request-handler.js';
import type { LongLived } from './long-lived.js';
import type { RequestLog } from './request-log.js';
import { responseClass } from './response.js';

/** What a worker's servers share: the request path from accept to access line. */
export interface RequestPath {
  handler: RequestHandler;
  tracker: ConnectionTracker;
  requests: RequestLog;
  /** Absent when the access log is off. */
  batch: AccessBatch | undefined;
  /** Upgraded sockets and event streams. */
  longLived: LongLived;
}

/**
 * One of the worker's HTTP servers (not yet listening). Its one 'connection' listener makes
 * the connection's record (connection.ts) and hands it to the tracker and the access batch;
 * its responses call the handler's end hook; the parser's refusals go to client-errors.ts.
 */
export function corralServer(http: WorkerSpec['http'], path: RequestPath): Server {
  const server = createServer({
    ServerResponse: responseClass(path.handler.ended, path.longLived.stream),
    maxHeaderSize: http.maxHeaderSize,
    requestTimeout: http.requestTimeoutMs,
    headersTimeout: http.headersTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // Node checks headers/request timeouts only this often (30 s by default), so a 2 s
    // headers-timeout could otherwise let a slow client hold a connection for 32 s.
    connectionsCheckingInterval: Math.min(1000, http.headersTimeoutMs / 2),
  }, path.handler.handle);
  server.keepAliveTimeout = http.keepAliveTimeoutMs;
  server.on('connection', (socket: Socket) => {
    const conn = accept(socket);
    path.tracker.add(conn);
    path.batch?.hold(socket);
    socket.once('close', () => {
      for (const res of path.tracker.remove(conn)) path.handler.abandoned(res);
    });
  });
  server.on('clientError', clientErrorListener(path.requests));
  return server;
}
