import { Server as HttpServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WorkerSpec } from '../ipc/messages.js';
import type { Logger } from '../logging/logger.js';
import { dropUntrusted, sentHeaders, type ProxyTrust } from '../proxies/forwarded.js';
import { traceLogFields } from '../logging/trace-context.js';
import type { AccessBatch } from './access-log.js';
import type { UpgradeHandler } from './app-shape.js';
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

type ServerClass = new (options: ServerOptions, listener: RequestListener) => Server;

/**
 * corral's server over one of Node's server classes (http, or https for TLS): the same
 * options, the same accounting, the same listeners. A PROXY protocol header comes first, on
 * the raw connection (over TLS, before the handshake).
 */
function corralClass(Base: ServerClass) {
  return class extends Base {
    constructor(options: ServerOptions, private readonly path: RequestPath, private readonly proxy: ProxyIntake | undefined) {
      super(options, path.handler.handle);
    }

    override emit(event: string, ...args: unknown[]): boolean {
      if (event === 'connection' && this.proxy) {
        readThenEmit(this.proxy, args[0] as Socket, this instanceof HttpsServer, (socket) => super.emit('connection', socket));
        return true;
      }
      account(this.path, event, args);
      return super.emit(event, ...args);
    }
  };
}

const CorralServer = corralClass(HttpServer);
const CorralTlsServer = corralClass(HttpsServer as unknown as ServerClass);

/**
 * The PROXY protocol header is read before Node's HTTP parser (or the TLS handshake) is
 * attached by the 'connection' listeners: the socket reaches them once it is, with what
 * follows put back. The HTTP parser reads the socket's 'data' events, so the paused socket
 * is resumed for it. A TLS socket takes over the raw socket's handle and, on the next tick,
 * reads the bytes already buffered (a ClientHello that came in the header's segment):
 * resuming the raw socket would emit them as 'data' events nobody listens to first, and the
 * handshake would never start.
 */
function readThenEmit(proxy: ProxyIntake, socket: Socket, tls: boolean, emit: (socket: Socket) => void): void {
  readProxyHeader(socket, proxy, (source) => {
    if (source) setProxySource(socket, source.address);
    emit(socket);
    if (!tls) socket.resume();
  });
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
function account(path: RequestPath, event: string, args: unknown[]): void {
  if (event !== 'request' && event !== 'upgrade') return;
  const req = args[0] as IncomingMessage;
  // Before anything reads the request: an untrusted peer's forwarding headers never reach the app.
  const trust = path.dropUntrusted;
  if (trust) dropUntrusted(req, connectionOf(req.socket)?.addr ?? req.socket.remoteAddress, trust);
  if (event === 'request') path.handler.begin(req, args[1] as never);
  else path.longLived.upgraded(req, args[1] as Duplex, args[2] as Buffer | undefined);
}

/** The pair a TLS server starts with (the master's `tls` message); a later one goes to setSecureContext. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca?: string;
}

/** Secure-context options of a pair: the certificate with its chain, the key, and the client CAs. */
export function secureContextOptions(m: TlsMaterial): SecureContextOptions {
  return { cert: m.cert, key: m.key, ...(m.ca !== undefined ? { ca: m.ca } : {}) };
}

/**
 * One of the worker's HTTP servers (not yet listening), plain or, given a pair, over TLS.
 * Its one 'connection' listener (over TLS, 'secureConnection': the socket HTTP is parsed
 * from, once its handshake is done) makes the connection's record (connection.ts) and hands
 * it to the tracker and the access batch; its responses call the handler's end hook; the
 * parser's refusals go to client-errors.ts. With `proxy`, each connection's PROXY protocol
 * header is read first (proxy-header.ts).
 */
export function corralServer(http: WorkerSpec['http'], path: RequestPath, tls?: TlsMaterial, proxy?: ProxyIntake): Server {
  const Kind = tls ? CorralTlsServer : CorralServer;
  const server = new Kind({
    ...(tls && {
      ...secureContextOptions(tls),
      // With client CAs: mutual TLS, a handshake without a certificate they signed is refused.
      requestCert: tls.ca !== undefined,
      rejectUnauthorized: tls.ca !== undefined,
      ALPNProtocols: ['http/1.1'],
    }),
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
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    const conn = accept(socket);
    path.tracker.add(conn);
    path.batch?.hold(socket);
    socket.once('close', () => {
      for (const res of path.tracker.remove(conn)) path.handler.abandoned(res);
    });
  });
  server.on('clientError', clientErrorListener(path.requests));
  if (tls) trackHandshakes(server, path.tracker);
  return server;
}

const kSettle = Symbol('corral.handshake');

/**
 * A TLS connection is a connection to the tracker from its accept, not only from the end of
 * its handshake: a drain that began meanwhile waits for it, so a client whose handshake was
 * under way is served (with Connection: close) instead of cut by the worker's exit. A
 * handshake ends in 'secureConnection' or in 'tlsClientError' (a failed handshake, or a
 * socket closed before it was over); Node destroys the socket after the error either way.
 */
function trackHandshakes(server: Server, tracker: ConnectionTracker): void {
  server.prependListener('connection', (raw: Socket & { [kSettle]?: () => void }) => {
    raw[kSettle] = tracker.handshake(raw);
  });
  const settle = (tlsSocket: { _parent?: unknown; [kSettle]?: () => void } | undefined) => {
    const raw = tlsSocket?._parent as { [kSettle]?: () => void } | undefined;
    raw?.[kSettle]?.();
  };
  // After the listener that makes the connection's record: the tracker counts it all along, as a handshake, then as a connection.
  server.on('secureConnection', settle);
  server.on('tlsClientError', (_err: Error, tlsSocket: { _parent?: unknown }) => settle(tlsSocket));
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
      log.error({ err, method: req.method, url: req.url, ...traceLogFields(sentHeaders(req)) }, 'upgrade handler failed');
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
