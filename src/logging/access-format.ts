/**
 * Access log formats: `json` (default), `combined`, `common` (Apache/nginx), or a template
 * with {fields}. Compiled once per worker into a function from one request to one line.
 */
import { prettyAccessFormat } from './access-pretty.js';

export interface AccessRecord {
  time: Date;
  method: string;
  url: string;
  /** '' when unknown (a request line the parser refused). */
  httpVersion: string;
  status: number;
  bytes: number;
  durationMs: number;
  remoteAddr: string | undefined;
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
}

function text(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

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

const reqHeader = (r: AccessRecord, name: string) => rawHeader(r.rawHeaders, name);
const resHeader = (r: AccessRecord, name: string) => text(r.res.getHeader(name));

export type AccessFormatter = (r: AccessRecord) => string;

/** Headers whose values are never written to a log, whatever the format says. */
export const NEVER_LOGGED = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

const FIELDS: Record<string, (r: AccessRecord) => string | number | undefined> = {
  time: (r) => r.time.toISOString(),
  time_clf: (r) => clfTime(r.time),
  method: (r) => r.method,
  url: (r) => r.url,
  protocol: (r) => protocol(r),
  status: (r) => r.status,
  bytes: (r) => r.bytes,
  duration: (r) => round3(r.durationMs),
  remote_addr: (r) => r.remoteAddr,
  forwarded_for: (r) => reqHeader(r, 'x-forwarded-for'),
  user_agent: (r) => reqHeader(r, 'user-agent'),
  referer: (r) => reqHeader(r, 'referer'),
  request_id: (r) => r.requestId,
  pid: (r) => r.pid,
  worker: (r) => r.worker,
};

export const FIELD_NAMES = Object.keys(FIELDS);

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let clfCache = { second: -1, text: '' };

/** 10/Oct/2000:13:55:36 +0000 (UTC), computed once per second. */
export function clfTime(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== clfCache.second) {
    const p = (n: number) => String(n).padStart(2, '0');
    const text = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
    clfCache = { second, text };
  }
  return clfCache.text;
}

function protocol(r: AccessRecord): string | undefined {
  return r.httpVersion === '' ? undefined : 'HTTP/' + r.httpVersion;
}

/*
 * Escaping. Every character that could end, split or rewrite a line for a line-oriented
 * reader or a terminal is escaped in every format: C0 controls (newlines among them), DEL,
 * C1 controls (U+0080-U+009F: NEL U+0085 ends a line for some readers, CSI U+009B starts a
 * terminal control sequence) and the line and paragraph separators U+2028/U+2029. Node reads
 * the bytes 0x80-0xFF of a request line or header as these characters.
 */
const HEX = '0123456789ABCDEF';

/** nginx's escape: `\xHH` for each UTF-8 byte of the character. */
function hexEscape(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x80) return '\\x' + HEX[code >> 4] + HEX[code & 15];
  let out = '';
  for (const b of Buffer.from(c, 'utf8')) out += '\\x' + HEX[b >> 4] + HEX[b & 15];
  return out;
}

const QUOTED_ESCAPE = /["\\\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
/** Unquoted (template) values: whitespace too, so a value stays one field. */
const BARE_ESCAPE = /[\s"\\\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

/** Quotes a value the way nginx does: `"`, `\` and the characters above escaped as \xHH. */
function quoted(v: string | number | undefined): string {
  if (v === undefined || v === '') return '"-"';
  return '"' + String(v).replace(QUOTED_ESCAPE, hexEscape) + '"';
}

function bare(v: string | number | undefined): string {
  if (v === undefined || v === '') return '-';
  return String(v).replace(BARE_ESCAPE, hexEscape);
}

/** Printable ASCII without `"` and `\`: JSON needs no escapes for these strings. */
const JSON_SAFE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** What JSON.stringify leaves raw of the characters above. */
const JSON_UNSAFE = /[\x7f-\x9f\u2028\u2029]/;
const JSON_UNSAFE_ALL = /[\x7f-\x9f\u2028\u2029]/g;
const uEscape = (c: string) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

/** JSON.stringify's text, with DEL, C1 controls and U+2028/U+2029 as \u escapes too. */
function jsonString(v: string): string {
  if (JSON_SAFE.test(v)) return '"' + v + '"';
  const s = JSON.stringify(v);
  return JSON_UNSAFE.test(s) ? s.replace(JSON_UNSAFE_ALL, uEscape) : s;
}

let isoCache = { ms: NaN, text: '' };

/** toISOString, computed once per millisecond. */
function isoTime(d: Date): string {
  const ms = d.getTime();
  if (ms !== isoCache.ms) isoCache = { ms, text: d.toISOString() };
  return isoCache.text;
}

/**
 * One JSON object per line, built by hand: the same text JSON.stringify gives for these
 * fields in this order (undefined ones left out), at a third of its cost per request.
 */
function json(r: AccessRecord): string {
  let s = '{"time":"' + isoTime(r.time) + '"';
  if (r.remoteAddr !== undefined) s += ',"remote_addr":' + jsonString(r.remoteAddr);
  const xff = reqHeader(r, 'x-forwarded-for');
  if (xff !== undefined) s += ',"forwarded_for":' + jsonString(xff);
  s += ',"method":' + jsonString(r.method) + ',"url":' + jsonString(r.url);
  if (r.httpVersion !== '') s += ',"protocol":' + jsonString('HTTP/' + r.httpVersion);
  s += ',"status":' + jsonNumber(r.status) + ',"bytes":' + jsonNumber(r.bytes) + ',"duration_ms":' + jsonNumber(round3(r.durationMs));
  const ua = reqHeader(r, 'user-agent');
  if (ua !== undefined) s += ',"user_agent":' + jsonString(ua);
  const referer = reqHeader(r, 'referer');
  if (referer !== undefined) s += ',"referer":' + jsonString(referer);
  return s + ',"request_id":' + jsonString(r.requestId) + ',"pid":' + jsonNumber(r.pid) + ',"worker":' + jsonString(r.worker) + '}';
}

function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

function common(r: AccessRecord): string {
  return `${bare(r.remoteAddr)} - - [${clfTime(r.time)}] ${quoted(r.httpVersion === '' ? `${r.method} ${r.url}` : `${r.method} ${r.url} HTTP/${r.httpVersion}`)} ${r.status} ${r.bytes > 0 ? r.bytes : '-'}`;
}

function combined(r: AccessRecord): string {
  return `${common(r)} ${quoted(reqHeader(r, 'referer'))} ${quoted(reqHeader(r, 'user-agent'))}`;
}

/** Compiles a format; throws an Error stating the rule for an unknown field or a secret header. */
export function compileAccessFormat(format: string): AccessFormatter {
  if (format === 'json') return json;
  if (format === 'common') return common;
  if (format === 'combined') return combined;
  const terminal = prettyAccessFormat(format);
  if (terminal) return terminal;
  if (!format.includes('{')) throw new Error(`must be json, combined, common, or a template with {fields} such as "{method} {url} {status}"`);
  const parts: Array<string | ((r: AccessRecord) => string)> = [];
  const re = /\{([^{}]*)\}/g;
  let last = 0;
  for (let m = re.exec(format); m; m = re.exec(format)) {
    parts.push(format.slice(last, m.index));
    parts.push(fieldFn(m[1]!.trim()));
    last = re.lastIndex;
  }
  parts.push(format.slice(last));
  const compiled = parts.filter((p) => p !== '');
  return (r) => {
    let out = '';
    for (const p of compiled) out += typeof p === 'string' ? p : p(r);
    return out;
  };
}

function fieldFn(name: string): (r: AccessRecord) => string {
  const header = /^(req|res)\.([a-z0-9-]+)$/i.exec(name);
  if (header) {
    const h = header[2]!.toLowerCase();
    if (NEVER_LOGGED.has(h)) throw new Error(`{${name}}: the ${h} header is never logged`);
    return header[1] === 'req' ? (r) => bare(reqHeader(r, h)) : (r) => bare(resHeader(r, h));
  }
  const f = FIELDS[name];
  if (!f) throw new Error(`unknown field {${name}}; fields are ${FIELD_NAMES.map((n) => `{${n}}`).join(' ')} {req.HEADER} {res.HEADER}`);
  return (r) => bare(f(r));
}
