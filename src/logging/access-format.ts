/**
 * Access log formats: `json` (default), `combined`, `common` (Apache/nginx), or a template
 * with {fields}. Compiled once per worker into a function from one request to one line.
 */
import { prettyAccessFormat } from './access-pretty.js';
import { rawHeader, type AccessFormatter, type AccessRecord } from './access-record.js';
import { jsonString, textEscaper } from './line-escape.js';
import { parseTraceparent, type TraceParent } from './trace-context.js';

/** The record every format reads, for the callers that build one. */
export type { AccessRecord };

function text(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

const reqHeader = (r: AccessRecord, name: string) => rawHeader(r.rawHeaders, name);
const resHeader = (r: AccessRecord, name: string) => text(r.res.getHeader(name));
/** The request's valid traceparent (as the client sent it), if any. */
const traceOf = (r: AccessRecord): TraceParent | undefined => parseTraceparent(reqHeader(r, 'traceparent'));

/** Headers whose values are never written to a log, whatever the format says. */
const NEVER_LOGGED = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

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
  peer_addr: (r) => ('peerAddr' in r ? r.peerAddr : r.remoteAddr),
  forwarded_for: (r) => reqHeader(r, 'x-forwarded-for'),
  user_agent: (r) => reqHeader(r, 'user-agent'),
  referer: (r) => reqHeader(r, 'referer'),
  request_id: (r) => r.requestId,
  trace_id: (r) => traceOf(r)?.traceId,
  span_id: (r) => traceOf(r)?.spanId,
  pid: (r) => r.pid,
  worker: (r) => r.worker,
  bytes_in: (r) => r.bytesIn,
  ws_close: (r) => r.wsClose,
};

const FIELD_NAMES = Object.keys(FIELDS);

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let clfCache = { second: -1, text: '' };

/** 10/Oct/2000:13:55:36 +0000 (UTC), computed once per second. */
function clfTime(d: Date): string {
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

/** nginx's quoting: `"` and `\` escaped too, so a quoted value ends at its closing quote. */
const quotedText = textEscaper('"\\\\');
/** Unquoted (template) values: whitespace too, so a value stays one field. */
const bareText = textEscaper('\\s"\\\\');

/** Quotes a value the way nginx does. */
function quoted(v: string | number | undefined): string {
  if (v === undefined || v === '') return '"-"';
  return '"' + quotedText(String(v)) + '"';
}

function bare(v: string | number | undefined): string {
  if (v === undefined || v === '') return '-';
  return bareText(String(v));
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
  // Only when a trusted proxy forwarded for someone else: other lines are unchanged.
  if (r.peerAddr !== r.remoteAddr && r.peerAddr !== undefined) s += ',"peer_addr":' + jsonString(r.peerAddr);
  const xff = reqHeader(r, 'x-forwarded-for');
  if (xff !== undefined) s += ',"forwarded_for":' + jsonString(xff);
  s += ',"method":' + jsonString(r.method) + ',"url":' + jsonString(r.url);
  if (r.httpVersion !== '') s += ',"protocol":' + jsonString('HTTP/' + r.httpVersion);
  s += ',"status":' + jsonNumber(r.status) + ',"bytes":' + jsonNumber(r.bytes) + ',"duration_ms":' + jsonNumber(round3(r.durationMs));
  // Only upgraded connections have these: an ordinary request's line is unchanged.
  if (r.bytesIn !== undefined) s += ',"bytes_in":' + jsonNumber(r.bytesIn);
  if (r.wsClose !== undefined) s += ',"ws_close":' + jsonNumber(r.wsClose);
  const ua = reqHeader(r, 'user-agent');
  if (ua !== undefined) s += ',"user_agent":' + jsonString(ua);
  const referer = reqHeader(r, 'referer');
  if (referer !== undefined) s += ',"referer":' + jsonString(referer);
  s += ',"request_id":' + jsonString(r.requestId);
  // Only with a valid traceparent (lowercase hex, nothing to escape): other lines are unchanged.
  const trace = traceOf(r);
  if (trace !== undefined) s += ',"trace_id":"' + trace.traceId + '","span_id":"' + trace.spanId + '"';
  return s + ',"pid":' + jsonNumber(r.pid) + ',"worker":' + jsonString(r.worker) + '}';
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
