/**
 * The client's address behind trusted proxies (docs/proxies.md). The socket's peer is believed
 * about who it forwards for only when it is a trusted proxy; X-Forwarded-For (or, without it,
 * the `for=` values of RFC 7239 Forwarded) is then walked from the peer leftwards to the first
 * address that is not trusted, with proxy-addr (what Express uses). The leftmost entry, which
 * the client writes, is never believed for being leftmost.
 */
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { rawHeader } from '../logging/access-record.js';

/** Unix-socket peers (they have no address). */
const UNIX = 'unix';
/** Trust no peer: forwarding headers are never believed. */
const NONE = 'none';

/** Checks one entry of the trusted list; returns what is wrong with it, or undefined. */
export function trustEntryProblem(entry: string): string | undefined {
  if (entry === UNIX || entry === NONE) return undefined;
  try {
    proxyaddr.compile(entry);
    return undefined;
  } catch (err) {
    return `${(err as Error).message}; entries are addresses, CIDR ranges (10.0.0.0/8, fd00::/8), loopback, linklocal, uniquelocal, unix, or none alone`;
  }
}

/** Checks the whole list: `none` stands alone. */
export function trustListProblem(entries: readonly string[]): string | undefined {
  if (entries.includes(NONE) && entries.length > 1) return '`none` cannot be combined with other entries';
  return undefined;
}

type TrustFn = (addr: string, i: number) => boolean;

const NEVER: TrustFn = () => false;

/** What the walk reads in place of a request: the peer and the chain, nearest last. */
interface WalkInput {
  socket: { remoteAddress: string };
  headers: { 'x-forwarded-for': string };
}

/**
 * A compiled trusted list: whether a peer is trusted, and the client's address of a request.
 * Built once per worker; a request without forwarding headers costs two scans of its raw
 * headers and allocates nothing.
 */
export class ProxyTrust {
  private readonly trustAddr: TrustFn;
  private readonly trustUnix: boolean;
  /** The walk's trust: the peer (index 0) is already known to be trusted. */
  private readonly trustBeyondPeer: TrustFn;
  readonly trustsNobody: boolean;

  constructor(entries: readonly string[]) {
    const addrs = entries.filter((e) => e !== UNIX && e !== NONE);
    this.trustAddr = addrs.length > 0 ? proxyaddr.compile(addrs) : NEVER;
    this.trustUnix = entries.includes(UNIX);
    this.trustsNobody = addrs.length === 0 && !this.trustUnix;
    const trustAddr = this.trustAddr;
    this.trustBeyondPeer = (addr, i) => i === 0 || trustAddr(addr, i);
  }

  /** Whether forwarding headers from this peer are believed (undefined: a unix-socket peer). */
  trustsPeer(peer: string | undefined): boolean {
    return peer === undefined || peer === '' ? this.trustUnix : this.trustAddr(peer, 0);
  }

  /**
   * The client's address of a request from `peer` carrying `raw` (rawHeaders as sent): the
   * peer itself unless it is trusted and forwarded for someone.
   */
  client(peer: string | undefined, raw: readonly string[]): string | undefined {
    if (this.trustsNobody) return peer;
    // X-Forwarded-For when present (nginx, HAProxy and ingress controllers send it); else Forwarded.
    const xff = rawHeader(raw, 'x-forwarded-for');
    const fwd = xff === undefined ? rawHeader(raw, 'forwarded') : undefined;
    if (xff === undefined && fwd === undefined) return peer;
    if (!this.trustsPeer(peer)) return peer;
    return this.walk(peer, xff ?? forwardedFor(fwd!).join(','));
  }

  private walk(peer: string | undefined, chain: string): string | undefined {
    const input: WalkInput = { socket: { remoteAddress: peer ?? '' }, headers: { 'x-forwarded-for': chain } };
    // [peer, nearest hop, ..., the first untrusted one (or the leftmost)].
    const addrs = proxyaddr.all(input as unknown as IncomingMessage, this.trustBeyondPeer);
    // A value that is not an address (`unknown`, an obfuscated name, garbage) ends the walk:
    // the client is then the nearest address known, the hop that wrote it.
    let i = addrs.length - 1;
    while (i > 0 && isIP(addrs[i]!) === 0) i--;
    const found = addrs[i];
    return found === undefined || found === '' ? peer : found;
  }
}

/** What each element of a walk stands for when it names no address (RFC 7239's `unknown`, an obfuscated node). */
const NOT_AN_ADDRESS = 'unknown';

/**
 * The nodes of a Forwarded header's `for=` parameters, in order (leftmost first): addresses
 * without their ports or brackets, and `unknown` for an element that names no address (an
 * obfuscated identifier, `unknown`, no `for=`, or an element that does not parse).
 */
export function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of splitOutsideQuotes(header, ',')) {
    if (element.trim() === '') continue;
    let node: string | undefined;
    let bad = false;
    for (const pair of splitOutsideQuotes(element, ';')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        if (pair.trim() !== '') bad = true;
        continue;
      }
      if (pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      const value = unquote(pair.slice(eq + 1).trim());
      if (value === undefined || node !== undefined) bad = true;
      else node = nodeAddress(value);
    }
    out.push(bad || node === undefined ? NOT_AN_ADDRESS : node);
  }
  return out;
}

/** Splits on `sep` outside quoted strings; an unterminated quote leaves the rest as one part. */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === sep) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** A token, or a quoted-string without its quotes and escapes; undefined when malformed. */
function unquote(v: string): string | undefined {
  if (!v.startsWith('"')) return /^[!#$%&'*+\-.^_`|~0-9A-Za-z:[\]]+$/.test(v) ? v : undefined;
  if (v.length < 2 || !v.endsWith('"')) return undefined;
  const inner = v.slice(1, -1);
  if (/(^|[^\\])"/.test(inner)) return undefined;
  return inner.replace(/\\(.)/g, '$1');
}

/** A node (RFC 7239 section 6): `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`. */
function nodeAddress(node: string): string {
  let host = node;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return NOT_AN_ADDRESS;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:[0-9A-Za-z_.-]+$/.test(rest)) return NOT_AN_ADDRESS;
    host = host.slice(1, end);
    return isIP(host) === 6 ? host : NOT_AN_ADDRESS;
  }
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return isIP(host) === 4 ? host : NOT_AN_ADDRESS;
}

/** The headers through which a proxy tells where a request came from. */
const FORWARDING_HEADERS = ['x-forwarded-for', 'forwarded', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip'];

const kSentHeaders = Symbol('corral.sentHeaders');
type ScrubbedRequest = IncomingMessage & { [kSentHeaders]?: readonly string[] };

/**
 * Under `forwarded-headers = drop-untrusted`: removes the forwarding headers a peer that is
 * not trusted sent, from req.headers and req.rawHeaders, before the app sees the request.
 * The access log still reads them as sent (sentHeaders).
 */
export function dropUntrusted(req: IncomingMessage, peer: string | undefined, trust: ProxyTrust): void {
  const h = req.headers;
  if (h['x-forwarded-for'] === undefined && h['forwarded'] === undefined && h['x-forwarded-proto'] === undefined
    && h['x-forwarded-host'] === undefined && h['x-forwarded-port'] === undefined && h['x-real-ip'] === undefined) return;
  if (trust.trustsPeer(peer)) return;
  for (const name of FORWARDING_HEADERS) delete h[name];
  const raw = req.rawHeaders;
  const kept: string[] = [];
  for (let i = 0; i < raw.length - 1; i += 2) {
    if (!FORWARDING_HEADERS.includes(raw[i]!.toLowerCase())) kept.push(raw[i]!, raw[i + 1]!);
  }
  (req as ScrubbedRequest)[kSentHeaders] = raw;
  req.rawHeaders = kept;
}

/** The request's headers as the client sent them, before any were dropped. */
export function sentHeaders(req: IncomingMessage): readonly string[] {
  return (req as ScrubbedRequest)[kSentHeaders] ?? req.rawHeaders;
}
