import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { connInfo, trackConnection, type ConnInfo } from './conn-info.js';
import { logAnswered, logRefused, type RefusedRequest } from './request-log.js';
import { BEGUN, LOGGED } from './response.js';

/**
 * Access lines for the requests Node's HTTP server refuses before the app sees them, and the
 * same answers Node gives (lib/_http_server.js, socketOnError): a parse error is a 400, too
 * large headers (HPE_HEADER_OVERFLOW, which includes a too long URL) a 431, too large chunk
 * extensions a 413, a request whose headers or body do not arrive in time
 * (headers-timeout, request-timeout: ERR_HTTP_REQUEST_TIMEOUT) a 408. Node writes that
 * answer only while the in-flight response has written nothing, then destroys the socket.
 *
 * Also tracks every connection (its peer address and each request's first byte; see
 * conn-info.ts), so this is attached to each of corral's servers.
 */
export function attachClientErrors(server: Server): void {
  server.on('connection', trackConnection);
  server.on('clientError', onClientError);
}

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

type ClientError = Error & { code?: string; rawPacket?: Buffer };
type HttpSocket = Socket & { _httpMessage?: { headersSent: boolean } | null };

function onClientError(err: ClientError, socket: HttpSocket): void {
  const info = connInfo(socket);
  if (!info || info.closing) {
    socket.destroy(err);
    return;
  }
  // Node answers only a socket still open whose in-flight response has sent nothing; a socket
  // error (ECONNRESET) has already closed it.
  const out = socket._httpMessage;
  const status = socket.writable && !socket.destroyed && (!out || !out.headersSent) ? statusFor(err.code) : 0;
  // The line goes to the batch before the answer is written: the answer is held until then.
  if (info.began > 0) {
    // A request whose head the app never had: it was refused or timed out while arriving.
    logRefused(refused(err, info, status || 499));
    info.began = 0;
  } else if (info.res?.phase === BEGUN && status !== 0) {
    // The app has the request and its body failed or timed out: the client gets this status,
    // so the close is not logged again as a 499. Without an answer, the close logs it.
    info.res.phase = LOGGED;
    logAnswered(info.res, status);
  }
  // Nothing of a request had arrived (a connection that never sent a byte reaching
  // headers-timeout): answered as Node does, not logged (as nginx does not).
  if (status === 0) {
    socket.destroy(err);
    return;
  }
  info.closing = true;
  // Destroyed once the answer is out: a held write would otherwise be dropped with the socket.
  socket.write(canned(status), () => socket.destroy(err));
}

/** The request line, when the packet the parser failed on starts with one. */
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(\d\.\d)\r?$/;
const MAX_LINE = 1024;

function refused(err: ClientError, info: ConnInfo, status: number): RefusedRequest {
  let method = '-';
  let url = '-';
  let httpVersion = '';
  const raw = err.rawPacket;
  if (raw && raw.length > 0) {
    const nl = raw.indexOf(10);
    const line = raw.toString('latin1', 0, Math.min(nl >= 0 ? nl : raw.length, MAX_LINE));
    const m = REQUEST_LINE.exec(line);
    if (m) {
      method = m[1]!;
      url = m[2]!;
      httpVersion = m[3]!;
    } else if (err.code === 'HPE_INVALID_METHOD') {
      // The bytes the client sent instead of a request (a TLS handshake, a scanner's probe),
      // as nginx logs them; escaped when the line is written.
      url = line;
    }
  }
  return { method, url, httpVersion, status, startedAt: info.began, remoteAddr: info.addr, requestId: randomUUID() };
}
