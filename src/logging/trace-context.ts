/**
 * The W3C Trace Context `traceparent` request header (https://www.w3.org/TR/trace-context/,
 * level 1), read so log lines can name the trace a request belongs to. corral creates no
 * spans: the span id it logs is the caller's (the header's parent-id), the span the request
 * came from.
 */
import { rawHeader } from './access-record.js';

export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** The caller's span: 16 lowercase hex digits, not all zero. */
  spanId: string;
}

/** `00-` + 32 + `-` + 16 + `-` + 2: the length of a version 00 header, and the part a later version starts with. */
const V00_LENGTH = 55;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Whether s[from, to) is lowercase hex only (the spec's HEXDIGLC: upper case is invalid). */
function lowerHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/**
 * The trace and parent ids of a `traceparent` value, or undefined when it is absent or not
 * valid: then nothing of it is logged. Version 00 must be exactly 55 characters; version ff
 * is invalid; a later version is read as the spec says: its first 55 characters laid out as
 * version 00's, then either the end or a `-` before whatever that version adds. A header
 * sent twice arrives joined with `, ` and is thus invalid, as the spec wants.
 */
export function parseTraceparent(value: string | undefined): TraceParent | undefined {
  if (value === undefined || value.length < V00_LENGTH) return undefined;
  if (!lowerHex(value, 0, 2)) return undefined;
  const version = value.slice(0, 2);
  if (version === 'ff') return undefined;
  if (version === '00' ? value.length !== V00_LENGTH : value.length > V00_LENGTH && value[V00_LENGTH] !== '-') return undefined;
  if (value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return undefined;
  if (!lowerHex(value, 3, 35) || !lowerHex(value, 36, 52) || !lowerHex(value, 53, 55)) return undefined;
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId };
}

/**
 * What an error-log line about a request adds, under the access log's names: the trace and
 * span ids of its valid traceparent, or nothing. `raw` is the request's headers as sent.
 */
export function traceLogFields(raw: readonly string[]): { trace_id: string; span_id: string } | undefined {
  const trace = parseTraceparent(rawHeader(raw, 'traceparent'));
  return trace && { trace_id: trace.traceId, span_id: trace.spanId };
}
