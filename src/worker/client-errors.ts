import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { connectionOf, type Connection } from './connection.js';
import { lingeringClose } from './linger.js';
import type { RefusedRequest, RequestLog } from './request-log.js';
import { BEGUN, LOGGED } from './response.js';
import { newRequestId } from './request-id.js';

const CANNED = new Map<number, Buffer>();
function canned(status: number): Buffer {
  let buf = CANNED.get(status);
  if (!buf) {
    buf = Buffer.from(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`, 'latin1');
    CANNED.set(status, buf);
  }
  return buf;
}

function statusFor(code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return 431;
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW': return 413;
    case 'ERR_HTTP_REQUEST_TIMEOUT': return 408;
    default: return 400;
  }
}

/** What Node's parser attaches to its errors (rawPacket: the data it failed on). */
type ClientError = Error & { code?: string; rawPacket?: Buffer; bytesParsed?: number };
type HttpSocket = Socket & { _httpMessage?: { headersSent: boolean } | null };

/**
 * The 'clientError' listener of corral's servers: access lines for the requests Node's HTTP
 * server refuses before the app sees them, and the same answers Node gives
 * (lib/_http_server.js, socketOnError): a parse error is a 400, too large headers
 * (HPE_HEADER_OVERFLOW, which includes a too long URL) a 431, too large chunk extensions a
 * 413, a request whose headers or body do not arrive in time (headers-timeout,
 * request-timeout: ERR_HTTP_REQUEST_TIMEOUT) a 408. Node writes that answer only while the
 * in-flight response has written nothing. Unlike Node, which destroys the socket at once (a
 * reset that can lose the answer), the answer is followed by a lingering close (linger.ts).
 */
export function clientErrorListener(log: RequestLog): (err: ClientError, socket: Socket) => void {
  return (err, socket) => onClientError(log, err, socket as HttpSocket);
}

function onClientError(log: RequestLog, err: ClientError, socket: HttpSocket): void {
  const conn = connectionOf(socket);
  // Being closed already (the parser fails again on what follows, or at its end): the
  // answer and the writes before it must not be cut short.
  if (conn?.state === 'refused') return;
  // Node answers only a socket still open whose in-flight response has sent nothing; a socket
  // error (ECONNRESET) has already closed it.
  const out = socket._httpMessage;
  const status = socket.writable && !socket.destroyed && (!out || !out.headersSent) ? statusFor(err.code) : 0;
  // The line goes to the batch before the answer is written: the answer is held until then.
  if (!conn) {
    // not tracked (cannot happen for corral's servers): answered, not logged
  } else if (conn.began > 0) {
    // A request whose head the app never had: it was refused or timed out while arriving.
    // Unanswered (a response on the connection had begun), it is logged with the refusal's
    // status all the same, unless the socket failed (the client is gone: 499).
    const gone = !err.code?.startsWith('HPE_') && err.code !== 'ERR_HTTP_REQUEST_TIMEOUT';
    log.refused(refused(err, conn, status || (gone ? 499 : statusFor(err.code))));
    conn.began = 0;
  } else if (conn.res?.phase === BEGUN && status !== 0) {
    // The app has the request and its body failed or timed out: the client gets this status,
    // so the close is not logged again as a 499. Without an answer, the close logs it.
    conn.res.phase = LOGGED;
    log.response(conn.res, status, false);
  }
  // Otherwise nothing of a request had arrived (a connection that never sent a byte, at
  // headers-timeout): answered as Node does, not logged, as nginx does not.
  if (conn) conn.state = 'refused';
  if (status !== 0) lingeringClose(socket, canned(status));
  else if (socket.writable && socket.writableLength > 0) flushThenDestroy(socket, err);
  else socket.destroy(err);
}

/** Longest wait for the writes queued before a failure to go out before the socket is cut. */
const FLUSH_MS = 2000;

/**
 * Destroys the socket once every write queued on it is out: writes of this turn's responses
 * are held until their access lines are written (AccessBatch), and destroying the socket at
 * once would drop them.
 */
function flushThenDestroy(socket: Socket, err: Error): void {
  const done = () => {
    clearTimeout(timer);
    socket.destroy(err);
  };
  const timer = setTimeout(done, FLUSH_MS);
  timer.unref();
  socket.write(NOTHING, done);
}

const NOTHING = Buffer.alloc(0);

/** A request line whose fields can be logged. */
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(\d\.\d)\r?$/;
const MAX_LINE = 1024;

/**
 * The refused request's line, from the packet the parser failed on: the line where its head
 * starts (after the previous message's blank line when several came in one packet), when
 * that is a request line. A head begun in an earlier packet, or right after a body, is not
 * in view: then method and url are '-'.
 */
function refused(err: ClientError, conn: Connection, status: number): RefusedRequest {
  let method = '-';
  let url = '-';
  let httpVersion = '';
  const raw = err.rawPacket;
  if (raw && raw.length > 0) {
    const at = Math.min(Math.max(0, Number(err.bytesParsed) || 0), raw.length);
    const garbage = err.code === 'HPE_INVALID_METHOD';
    const start = garbage ? lineStart(raw, at) : headStart(raw, at);
    const nl = raw.indexOf(10, start);
    const line = raw.toString('latin1', start, Math.min(nl >= 0 ? nl : raw.length, start + MAX_LINE));
    const m = REQUEST_LINE.exec(line);
    if (m) {
      method = m[1]!;
      url = m[2]!;
      httpVersion = m[3]!;
    } else if (garbage) {
      // The bytes the client sent instead of a request (a TLS handshake, a scanner's probe),
      // as nginx logs them; escaped when the line is written.
      url = line;
    }
  }
  return { method, url, httpVersion, status, startedAt: conn.began, remoteAddr: conn.addr, peerAddr: conn.peer, requestId: newRequestId() };
}

function lineStart(raw: Buffer, at: number): number {
  return at > 0 ? raw.lastIndexOf(10, at - 1) + 1 : 0;
}

function headStart(raw: Buffer, at: number): number {
  if (at <= 0) return 0;
  const crlf = raw.lastIndexOf('\r\n\r\n', at - 1);
  const lf = raw.lastIndexOf('\n\n', at - 1);
  return Math.max(crlf >= 0 ? crlf + 4 : 0, lf >= 0 ? lf + 2 : 0);
}
