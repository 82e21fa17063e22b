import { Server as HttpServer, type IncomingMessage, type Server, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WorkerSpec } from '../ipc/messages.js';
import type { Logger } from '../logging/logger.js';
import { dropUntrusted, type ProxyTrust } from '../proxies/forwarded.js';
import type { AccessBatch } from './access-log.js';
import type { UpgradeHandler } from './app-loader.js';
import { clientErrorListener } from './client-errors.js';
import { accept, connectionOf, setProxySource } from './connection.js';
import type { ConnectionTracker } from './connections.js';
import type { RequestHandler } from './request-handler.js';
import type { LongLived } from './long-lived.js';
import { readProxyHeader, type ProxyIntake } from './proxy-header.js';
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
  /**
   * The trusted proxies, when the forwarding headers other peers send are dropped before the
   * app sees them (forwarded-headers = drop-untrusted); absent: they are kept.
   */
  dropUntrusted?: ProxyTrust;
}

/**
 * corral's own accounting runs where Node dispatches a request or an upgrade: in the server's
 * emit, before any listener. Listeners are the app's to arrange: engine.io (Socket.IO)
 * removes every 'request' listener and calls them back only for paths that are not its own,
 * and apps add 'upgrade' listeners of their own in init. Whoever answers, each request is
 * counted, tracked and logged (`begin`) and each upgraded socket is known to `longLived`.
 * An 'upgrade' is emitted only when the server has an 'upgrade' listener; without one, Node
 * hands an Upgrade request to the 'request' listeners like any other request.
 */
class CorralServer extends HttpServer {
  constructor(options: ServerOptions, private readonly path: RequestPath, private readonly proxy: ProxyIntake | undefined) {
    super(options, path.handler.handle);
  }

  override emit(event: string, ...args: unknown[]): boolean {
    if (event === 'connection' && this.proxy) {
      // The header is read before Node's HTTP parser is attached (by the 'connection'
      // listeners): the socket reaches them once it is, with what follows put back.
      const socket = args[0] as Socket;
      readProxyHeader(socket, this.proxy, (source) => {
        if (source) setProxySource(socket, source.address);
        super.emit('connection', socket);
        socket.resume();
      });
      return true;
    }
    if (event === 'request' || event === 'upgrade') {
      const req = args[0] as IncomingMessage;
      // Before anything reads the request: an untrusted peer's forwarding headers never reach the app.
      const trust = this.path.dropUntrusted;
      if (trust) dropUntrusted(req, connectionOf(req.socket)?.addr ?? req.socket.remoteAddress, trust);
      if (event === 'request') this.path.handler.begin(req, args[1] as never);
      else this.path.longLived.upgraded(req, args[1] as Duplex, args[2] as Buffer | undefined);
    }
    return super.emit(event, ...args);
  }
}

/**
 * One of the worker's HTTP servers (not yet listening). Its one 'connection' listener makes
 * the connection's record (connection.ts) and hands it to the tracker and the access batch;
 * its responses call the handler's end hook; the parser's refusals go to client-errors.ts.
 * With `proxy`, each connection's PROXY protocol header is read first (proxy-header.ts).
 */
export function corralServer(http: WorkerSpec['http'], path: RequestPath, proxy?: ProxyIntake): Server {
  const server = new CorralServer({
    ServerResponse: responseClass(path.handler.ended, path.longLived.stream),
    maxHeaderSize: http.maxHeaderSize,
    requestTimeout: http.requestTimeoutMs,
    headersTimeout: http.headersTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // Node checks headers/request timeouts only this often (30 s by default), so a 2 s
    // headers-timeout could otherwise let a slow client hold a connection for 32 s.
    connectionsCheckingInterval: Math.min(1000, http.headersTimeoutMs / 2),
  }, path, proxy);
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

const UPGRADE_FAILED = 'HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n\r\nInternal Server Error\n';

/**
 * Gives the server's Upgrade requests to the app's upgrade handler. Installed only when the
 * app has one (its `upgrade` export, or a Fastify instance's own server's 'upgrade'
 * listeners): a server with an 'upgrade' listener no longer passes Upgrade requests to its
 * request handler. A handler that throws or rejects is logged and its socket ends as a
 * request's would: a 500 if nothing was written on it yet, then the socket is destroyed.
 */
export function serveUpgrades(server: Server, upgrade: UpgradeHandler, log: Logger): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const fail = (err: unknown): void => {
      log.error({ err, method: req.method, url: req.url }, 'upgrade handler failed');
      if (socket.destroyed) return;
      // Node took its own 'error' listener off the socket before the upgrade.
      socket.on('error', () => {});
      if (socket.writable && (socket as Partial<Socket>).bytesWritten === 0) socket.end(UPGRADE_FAILED, () => socket.destroy());
      else socket.destroy();
    };
    try {
      const out = upgrade(req, socket, head);
      if (out && typeof (out as Promise<unknown>).then === 'function') (out as Promise<unknown>).then(undefined, fail);
    } catch (err) {
      fail(err);
    }
  });
}
