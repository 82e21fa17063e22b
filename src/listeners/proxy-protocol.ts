import { isIP } from 'node:net';

/**
 * The PROXY protocol header a balancer (HAProxy `send-proxy` / `send-proxy-v2`, nginx
 * `proxy_protocol on`) sends first on each connection, versions 1 (a text line) and 2
 * (binary), as HAProxy's proxy-protocol.txt specifies them. Parsing only: the worker reads
 * the bytes (proxy-header.ts in worker/) and calls `parseProxyHeader` on what it has so far.
 */

/** The header's account of the connection. */
export interface ProxyHeader {
  /** Bytes the header takes at the start of the stream; what follows is the client's. */
  length: number;
  version: 1 | 2;
  /**
   * The client's address and port, when the header carries an IP connection (v1 TCP4/TCP6,
   * v2 PROXY over AF_INET/AF_INET6). Absent for v1 UNKNOWN, v2 LOCAL (the balancer's own
   * health checks), and v2 UNSPEC or AF_UNIX: the socket's own peer address stands then.
   */
  source?: { address: string; port: number };
}

export type ProxyParse =
  | { state: 'done'; header: ProxyHeader }
  /** Every byte so far is a valid start of a header; wait for more. */
  | { state: 'partial' }
  | { state: 'invalid'; reason: string };

/** The v2 signature: \r\n\r\n\0\r\nQUIT\n. */
const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 line, CRLF included (the spec's 107 bytes). */
export const V1_MAX = 107;
/** The longest v2 header: 16 bytes and a 16-bit length of addresses and TLVs. */
export const V2_MAX = 16 + 0xffff;

/**
 * Reads the header at the start of `buf` (all bytes received on the connection so far).
 * Strict: anything but a valid header (an HTTP request, a TLS hello, a truncated or
 * malformed header) is invalid as soon as a byte shows it, and a header is never guessed.
 */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return { state: 'partial' };
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIG[0]) return parseV2(buf);
  return { state: 'invalid', reason: 'no PROXY header (the connection does not start with one)' };
}

function startsLike(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyParse {
  if (!startsLike(buf, V1_PREFIX)) return { state: 'invalid', reason: 'no PROXY header (the connection does not start with one)' };
  const end = buf.subarray(0, V1_MAX).indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX) return { state: 'invalid', reason: `v1 header longer than ${V1_MAX} bytes` };
    // A lone CR or LF anywhere but as the end of the line is already wrong.
    const bare = buf.indexOf(0x0a) >= 0 || buf.subarray(0, -1).indexOf(0x0d) >= 0;
    return bare ? { state: 'invalid', reason: 'v1 header line not ended by CRLF' } : { state: 'partial' };
  }
  const line = buf.toString('latin1', 0, end);
  const length = end + 2;
  const parts = line.split(' ');
  const proto = parts[1];
  if (proto === 'UNKNOWN') return { state: 'done', header: { length, version: 1 } };
  if (proto !== 'TCP4' && proto !== 'TCP6') return { state: 'invalid', reason: `v1 header with protocol ${JSON.stringify(proto ?? '')} (TCP4, TCP6 or UNKNOWN)` };
  if (parts.length !== 6) return { state: 'invalid', reason: 'v1 header needs source, destination and both ports, separated by single spaces' };
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : 6;
  if (isIP(src) !== family || isIP(dst) !== family) return { state: 'invalid', reason: `v1 header addresses are not IPv${family} addresses` };
  const sp = v1Port(sport);
  if (sp === undefined || v1Port(dport) === undefined) return { state: 'invalid', reason: 'v1 header port is not a number from 0 to 65535' };
  return { state: 'done', header: { length, version: 1, source: { address: src, port: sp } } };
}

function v1Port(s: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** Bytes of the address block for each v2 family (high nibble of byte 13). */
const V2_ADDR_LEN: Record<number, number> = { 0x0: 0, 0x1: 12, 0x2: 36, 0x3: 216 };

function parseV2(buf: Buffer): ProxyParse {
  if (!startsLike(buf, V2_SIG)) return { state: 'invalid', reason: 'no PROXY header (the connection does not start with one)' };
  if (buf.length > 12) {
    const verCmd = buf[12]!;
    if (verCmd >> 4 !== 2) return { state: 'invalid', reason: `v2 header with version ${verCmd >> 4} (2 expected)` };
    if ((verCmd & 0x0f) > 1) return { state: 'invalid', reason: `v2 header with command ${verCmd & 0x0f} (LOCAL or PROXY expected)` };
  }
  if (buf.length > 13) {
    const fam = buf[13]!;
    if (V2_ADDR_LEN[fam >> 4] === undefined || (fam & 0x0f) > 2) return { state: 'invalid', reason: `v2 header with unknown address family or protocol 0x${fam.toString(16).padStart(2, '0')}` };
  }
  if (buf.length < 16) return { state: 'partial' };
  const len = buf.readUInt16BE(14);
  const local = (buf[12]! & 0x0f) === 0;
  const family = buf[13]! >> 4;
  const addrLen = V2_ADDR_LEN[family]!;
  // LOCAL may carry any bytes, which the receiver skips; PROXY needs its family's addresses.
  if (!local && len < addrLen) return { state: 'invalid', reason: `v2 header length ${len} too short for its addresses (${addrLen} bytes)` };
  if (buf.length < 16 + len) return { state: 'partial' };
  const length = 16 + len;
  if (local || family === 0x0) return { state: 'done', header: { length, version: 2 } };
  const problem = tlvProblem(buf.subarray(16 + addrLen, length));
  if (problem) return { state: 'invalid', reason: problem };
  if (family === 0x3) return { state: 'done', header: { length, version: 2 } };
  const source = family === 0x1
    ? { address: `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`, port: buf.readUInt16BE(24) }
    : { address: ipv6(buf.subarray(16, 32)), port: buf.readUInt16BE(48) };
  return { state: 'done', header: { length, version: 2, source } };
}

/** The TLVs after the addresses must tile their space exactly (type, 16-bit length, value); their values are not used. */
function tlvProblem(tlvs: Buffer): string | undefined {
  let at = 0;
  while (at < tlvs.length) {
    if (tlvs.length - at < 3) return 'v2 header with a truncated TLV';
    const size = tlvs.readUInt16BE(at + 1);
    at += 3 + size;
    if (at > tlvs.length) return 'v2 header with a TLV longer than the header';
  }
  return undefined;
}

/** An IPv6 address in the short form Node reports for sockets (lower case, the longest run of zero groups as ::, IPv4-mapped as ::ffff:a.b.c.d). */
function ipv6(b: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
