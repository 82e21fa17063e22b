import { isIP } from 'node:net';

/** One --bind value, parsed. */
export type BindSpec =
  | { kind: 'tcp'; host: string; port: number; text: string }
  | { kind: 'unix'; path: string; text: string }
  | { kind: 'fd'; fd: number; text: string };

const RULE = 'must be HOST:PORT, [IPv6]:PORT, unix:/path or fd://N';

function port(raw: string, text: string): number {
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) throw new Error(`port in ${JSON.stringify(text)} must be a number from 0 to 65535`);
  return Number(raw);
}

/** Parses a bind address; throws an Error whose message states the rule. */
export function parseBind(text: string): BindSpec {
  const s = text.trim();
  if (s.startsWith('unix:')) {
    const path = s.slice('unix:'.length);
    if (path === '') throw new Error(`unix socket path is empty: ${RULE}`);
    if (Buffer.byteLength(path) > 107) throw new Error(`unix socket path ${JSON.stringify(path)} is longer than 107 bytes (the sun_path limit)`);
    return { kind: 'unix', path, text: s };
  }
  if (s.startsWith('fd://')) {
    const n = s.slice('fd://'.length);
    if (!/^\d+$/.test(n) || Number(n) < 3) throw new Error(`fd in ${JSON.stringify(s)} must be a descriptor number ≥ 3 (0-2 are stdio)`);
    return { kind: 'fd', fd: Number(n), text: s };
  }
  if (/^\d+$/.test(s)) return { kind: 'tcp', host: '0.0.0.0', port: port(s, s), text: `0.0.0.0:${s}` };
  const v6 = /^\[([^\]]+)\]:(\d*)$/.exec(s);
  if (v6) {
    if (isIP(v6[1]!) !== 6) throw new Error(`${JSON.stringify(v6[1])} is not an IPv6 address`);
    return { kind: 'tcp', host: v6[1]!, port: port(v6[2]!, s), text: s };
  }
  const idx = s.lastIndexOf(':');
  if (idx < 0) throw new Error(`${JSON.stringify(s)} has no port: ${RULE}`);
  const host = s.slice(0, idx) || '0.0.0.0';
  if (host.includes(':')) throw new Error(`IPv6 addresses need brackets, as in [${host}]:${s.slice(idx + 1)}`);
  if (!/^[A-Za-z0-9.-]+$/.test(host)) throw new Error(`${JSON.stringify(host)} is not a host name or IPv4 address`);
  return { kind: 'tcp', host, port: port(s.slice(idx + 1), s), text: `${host}:${s.slice(idx + 1)}` };
}
