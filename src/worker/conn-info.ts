import type { Socket } from 'node:net';
import type { CorralResponse } from './response.js';

/** What the access log needs to know of a connection, kept on its socket. */
export interface ConnInfo {
  /** The peer's address, read when the connection is accepted: a destroyed socket no longer knows it. */
  readonly addr: string | undefined;
  /**
   * performance.now() at the first byte of the request being received; 0 once corral's
   * handler has it (or before any byte of the next one).
   */
  began: number;
  /** The last request on this connection given to corral's handler. */
  res: CorralResponse | undefined;
  /** A client error was answered: the connection is being closed. */
  closing: boolean;
}

const kInfo = Symbol('corral.connInfo');
type InfoSocket = Socket & { [kInfo]?: ConnInfo; parser?: Parser | null };
interface Parser {
  socket: InfoSocket | null;
  [K_ON_MESSAGE_BEGIN]?: unknown;
}

/**
 * Node's HTTP parser calls the function in this slot (kOnMessageBegin of its binding) at the
 * first byte of every message, before the request line is parsed, and even when that byte is
 * invalid. Node's server leaves the slot empty (null); corral puts one shared function there.
 */
const K_ON_MESSAGE_BEGIN = 0;

function onMessageBegin(this: Parser): void {
  const info = this.socket?.[kInfo];
  if (info) info.began = performance.now();
}

/** Starts tracking a connection the server just accepted (its parser is already attached). */
export function trackConnection(socket: Socket): void {
  const s = socket as InfoSocket;
  s[kInfo] = { addr: socket.remoteAddress, began: 0, res: undefined, closing: false };
  const parser = s.parser;
  if (parser && parser[K_ON_MESSAGE_BEGIN] === null) parser[K_ON_MESSAGE_BEGIN] = onMessageBegin;
}

export function connInfo(socket: Socket | null | undefined): ConnInfo | undefined {
  return (socket as InfoSocket | null | undefined)?.[kInfo];
}
