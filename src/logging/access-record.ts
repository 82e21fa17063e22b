/**
 * One request as the access log sees it, and the formatter type: what every access format
 * reads. A leaf: it imports nothing, so the formats can share it without importing each other.
 */
export interface AccessRecord {
  time: Date;
  method: string;
  url: string;
  /** '' when unknown (a request line the parser refused). */
  httpVersion: string;
  status: number;
  bytes: number;
  durationMs: number;
  /** The client's address: the peer's, or the one trusted proxies forwarded for (docs/proxies.md). */
  remoteAddr: string | undefined;
  /** The socket's peer (a proxy, or the client itself); absent in records made elsewhere: remoteAddr. */
  peerAddr?: string | undefined;
  requestId: string;
  pid: number;
  worker: string;
  /**
   * The request's headers as the client sent them (IncomingMessage#rawHeaders: name, value,
   * name, value...), not req.headers, which apps may rewrite while they serve.
   */
  rawHeaders: readonly string[];
  /** The response, for its headers. */
  res: { getHeader(name: string): string | string[] | number | undefined };
  /** An upgraded connection (a tunnel): bytes received from the client after the request's head. */
  bytesIn?: number;
  /** A WebSocket: the close code (the client's, else the one sent to it, else 1006). */
  wsClose?: number;
}

export type AccessFormatter = (r: AccessRecord) => string;

/** Whether a header name equals `lower` (lower-case) ignoring ASCII case, without allocating. */
function sameName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  if (name === lower) return true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** A request header as sent: every field of that name, in order, joined with ", ". */
export function rawHeader(raw: readonly string[], lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < raw.length - 1; i += 2) {
    if (sameName(raw[i]!, lower)) out = out === undefined ? raw[i + 1]! : out + ', ' + raw[i + 1]!;
  }
  return out;
}
