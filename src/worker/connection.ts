import type { Socket } from 'node:net';
import type { LongLivedKind } from '../ipc/messages.js';
import type { CorralResponse } from './response.js';

/**
 * Where a connection is in its life: serving requests; ended by a client error (the parser
 * refused a request, or the socket failed): what is queued, and the answer if one is due, goes
 * out, then it closes on its own within a bound (client-errors.ts, linger.ts); or told by a
 * drain to go (our FIN is sent, the peer must close its end).
 */
type ConnState = 'open' | 'refused' | 'fin-sent';

/**
 * Everything corral knows of one accepted connection, kept on its socket under one symbol (no
 * lookups on the request path). The server's one 'connection' listener makes it (server.ts);
 * the tracker (drains, balance), the handler (timing), client errors and the access log read it.
 */
export class Connection {
  /**
   * The client's address: the source address of the connection's PROXY protocol header when
   * its listener expects one and the header names one, else the peer's. Read when the
   * connection is accepted: a destroyed socket no longer knows it.
   */
  readonly addr: string | undefined;
  /** The address of the socket's peer (the balancer, on a PROXY protocol listener); undefined on unix sockets. */
  readonly peer: string | undefined;
  state: ConnState = 'open';
  /**
   * performance.now() at the first byte of the request being received; 0 once corral's
   * handler has it (or before any byte of the next one).
   */
  began = 0;
  /** The last request on this connection given to corral's handler. */
  res: CorralResponse | undefined = undefined;
  /** Requests begun on it; from the second one on it is a kept (keep-alive) connection. */
  requests = 0;
  /** Requests in flight on it. */
  busy = 0;
  /** Requests answered on it so far. */
  served = 0;
  /** When its last request was answered (or it was accepted), on the tracker's clock. */
  idleSince = 0;
  /** Told to close after its current response, to rebalance. */
  shed = false;
  /** When a drain sent our FIN (state 'fin-sent'), on the tracker's clock. */
  finAt = 0;
  /**
   * What it carries now when that is long-lived (long-lived.ts): an upgraded socket
   * ('websocket', for the rest of its life) or an event stream ('stream', until that response
   * ends). Drains, idle closing and balance leave these to LongLived.
   */
  longLived: LongLivedKind | undefined = undefined;
  /** performance.now() when it became long-lived (the request's first byte). */
  longSince = 0;

  constructor(readonly socket: Socket) {
    this.peer = socket.remoteAddress;
    // Over TLS the header was read on the raw connection the TLS socket wraps.
    this.addr = (socket as ConnSocket)[kProxySource] ?? (socket as { _parent?: ConnSocket })._parent?.[kProxySource] ?? this.peer;
  }
}

const kConn = Symbol('corral.conn');
const kProxySource = Symbol('corral.proxy-source');
type ConnSocket = Socket & { [kConn]?: Connection; [kProxySource]?: string; parser?: Parser | null };

/** Records the client address a PROXY protocol header gave, for the connection's record made next. */
export function setProxySource(socket: Socket, address: string): void {
  (socket as ConnSocket)[kProxySource] = address;
}
interface Parser {
  socket: ConnSocket | null;
  [K_ON_MESSAGE_BEGIN]?: unknown;
}

/**
 * Node's HTTP parser calls the function in this slot (kOnMessageBegin of its binding) at the
 * first byte of every message, before the request line is parsed, and even when that byte is
 * invalid. Node's server leaves the slot empty (null); corral puts one shared function there.
 */
const K_ON_MESSAGE_BEGIN = 0;

function onMessageBegin(this: Parser): void {
  const conn = this.socket?.[kConn];
  if (conn) conn.began = performance.now();
}

/** The record of a connection an HTTP server just accepted (its parser is already attached). */
export function accept(socket: Socket): Connection {
  const s = socket as ConnSocket;
  const conn = new Connection(socket);
  s[kConn] = conn;
  const parser = s.parser;
  if (parser && parser[K_ON_MESSAGE_BEGIN] === null) parser[K_ON_MESSAGE_BEGIN] = onMessageBegin;
  return conn;
}

/** The record of a connection of corral's servers; undefined for any other socket. */
export function connectionOf(socket: Socket | null | undefined): Connection | undefined {
  return (socket as ConnSocket | null | undefined)?.[kConn];
}
