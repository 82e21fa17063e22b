import { ServerResponse } from 'node:http';

/** A response of corral's servers that corral's handler has not begun (Node may answer it itself). */
export const CREATED = 0;
/** Begun by corral's handler: the app has it. */
export const BEGUN = 1;
/** Its access line is written (or it needs none): nothing more is logged for it. */
export const LOGGED = 2;

/**
 * Called once per response of corral's servers, when it is ended and before its last bytes
 * are sent: by the app (BEGUN), or by Node itself for a request it refused before the
 * handler (CREATED: 400 for an HTTP/1.1 request without Host, 417).
 */
export type EndHook = (res: CorralResponse) => void;

/**
 * Called once for a response the app is writing as an event stream (Content-Type
 * text/event-stream), just before its head is written; it may still change its headers.
 */
export type StreamHook = (res: CorralResponse) => void;

/**
 * The responses of corral's servers (http.createServer's ServerResponse option; one subclass
 * per server, made by responseClass). Its fields are own properties set by the constructor,
 * so every response has one shape and keeps them when a framework replaces its prototype
 * (Express does, per request).
 */
export abstract class CorralResponse extends ServerResponse {
  /** CREATED, BEGUN or LOGGED; responses of other servers have none (undefined). */
  phase = CREATED;
  /** performance.now() at the request's first byte. */
  startedAt = 0;
  /** Body bytes sent (none for HEAD, 204, 304). */
  bytesOut = 0;
  requestId = '';
  /** Its head said text/event-stream: a long-lived response, timed apart from requests. */
  eventStream = false;
  /** Its server's end hook: an own property, as the prototype may be replaced. */
  abstract readonly onEnd: EndHook;
  /** Its server's event-stream hook, likewise. */
  abstract readonly onStream: StreamHook;
}

/** The response class of one server, whose responses call `onEnd` when they are ended. */
export function responseClass(onEnd: EndHook, onStream: StreamHook): typeof ServerResponse {
  patchPrototype();
  class Response extends CorralResponse {
    readonly onEnd = onEnd;
    readonly onStream = onStream;
  }
  // Its generic signature differs from ServerResponse's only in typing.
  return Response as unknown as typeof ServerResponse;
}

interface Internals {
  phase?: number;
  bytesOut: number;
  /** OutgoingMessage's: false for HEAD and, once the status line is written, 204/304/1xx. */
  _hasBody: boolean;
  finished: boolean;
  destroyed: boolean;
  headersSent: boolean;
  statusCode: number;
}

type WriteFn = (this: ServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown) => boolean;
type EndFn = (this: ServerResponse, chunk?: unknown, encoding?: unknown, cb?: unknown) => ServerResponse;
type WriteHeadFn = (this: ServerResponse, ...args: unknown[]) => ServerResponse;

let patched = false;

/**
 * Installs, once per process, corral's byte counting and end detection on
 * http.ServerResponse.prototype itself, so neither depends on a response's own prototype
 * chain: Express swaps each response's prototype for its own (which inherits this one), and
 * wrappers such as compression's replace res.write/res.end as own properties but call the
 * methods they found. Only corral's responses (those with a phase) are touched; the
 * responses of servers an app creates itself go through unchanged. No per-request closures.
 */
function patchPrototype(): void {
  if (patched) return;
  patched = true;
  const proto = ServerResponse.prototype as unknown as { write: WriteFn; end: EndFn; writeHead: WriteHeadFn };
  const write = proto.write;
  const end = proto.end;
  const writeHead = proto.writeHead;
  // Every head goes through writeHead: an implicit one (the first write or end) calls it too.
  proto.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    const r = this as unknown as Internals;
    if (r.phase === BEGUN && !r.headersSent && isEventStream(this, args[1], args[2])) {
      (this as CorralResponse).eventStream = true;
      (this as CorralResponse).onStream(this as CorralResponse);
    }
    return writeHead.apply(this, args);
  };
  proto.write = function (this: ServerResponse, chunk, encoding, cb) {
    const r = this as unknown as Internals;
    if (r.phase === undefined || r.finished || r.destroyed) return write.call(this, chunk, encoding, cb);
    const ok = write.call(this, chunk, encoding, cb);
    // The status line is written by now, so _hasBody is final.
    if (r._hasBody) r.bytesOut += byteLength(chunk, encoding);
    return ok;
  };
  proto.end = function (this: ServerResponse, chunk, encoding, cb) {
    const r = this as unknown as Internals;
    // A response the app destroyed is logged at its close, as the client got it.
    if (r.phase !== undefined && r.phase !== LOGGED && !r.finished && !r.destroyed) {
      if (typeof chunk !== 'function' && bodyAllowed(r)) r.bytesOut += byteLength(chunk, encoding);
      (this as CorralResponse).onEnd(this as CorralResponse);
    }
    return end.call(this, chunk, encoding, cb);
  };
}

/** Whether the response carries a body, before or after its status line is written. */
function bodyAllowed(r: Internals): boolean {
  if (!r._hasBody) return false;
  if (r.headersSent) return true;
  const s = r.statusCode;
  return !(s === 204 || s === 304 || (s >= 100 && s < 200));
}

function byteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

const EVENT_STREAM = /^\s*text\/event-stream\b/i;

/**
 * Whether the head about to be written says text/event-stream: the headers given to
 * writeHead (an object, or an array of name/value pairs, flat or nested) win over those set
 * before. writeHead(status, headers) has the headers in the reason's place.
 */
function isEventStream(res: ServerResponse, reason: unknown, headers: unknown): boolean {
  const given = typeof reason === 'string' ? headers : reason;
  let type: unknown;
  if (Array.isArray(given)) {
    const flat = given.length > 0 && !Array.isArray(given[0]);
    const pairs = flat ? given.length / 2 : given.length;
    for (let i = 0; i < pairs; i++) {
      const name: unknown = flat ? given[2 * i] : (given[i] as unknown[])[0];
      if (typeof name === 'string' && name.toLowerCase() === 'content-type') type = flat ? given[2 * i + 1] : (given[i] as unknown[])[1];
    }
  } else if (given !== null && typeof given === 'object') {
    for (const name in given) if (name.toLowerCase() === 'content-type') type = (given as Record<string, unknown>)[name];
  }
  type ??= res.getHeader('content-type');
  return typeof type === 'string' && EVENT_STREAM.test(type);
}
