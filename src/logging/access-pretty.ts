/**
 * The access line for a terminal: `GET /nope 404 24 B 0.9 ms`, coloured by status. Chosen
 * only for a terminal (see terminal-access.ts); files and journald keep the configured
 * format. Characters that could break a line are escaped by the rule every format uses.
 */
import type { AccessFormatter, AccessRecord } from './access-record.js';
import { textEscaper } from './line-escape.js';

/** Format names the master hands to workers for terminal output. */
export const PRETTY_FORMAT = 'pretty';
export const PRETTY_COLOR_FORMAT = 'pretty-color';

const RESET = '\x1b[0m';
const DIM = '\x1b[2m';

function statusColor(status: number): string {
  if (status >= 500) return '\x1b[31m'; // red
  if (status >= 400) return '\x1b[33m'; // yellow
  if (status >= 300) return '\x1b[36m'; // cyan
  if (status >= 200) return '\x1b[32m'; // green
  return '\x1b[35m';
}

const safe = textEscaper();

/** 24 B, 1.5 kB, 12 MB (decimal units, as browsers' network panels show them). */
export function sizeText(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(bytes < 1e4 ? 1 : 0)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

/** 0.9 ms, 12 ms, 1.4 s. */
export function durationText(ms: number): string {
  if (!Number.isFinite(ms)) return '- ms';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function prettyAccessLine(r: AccessRecord, color: boolean): string {
  const head = `${safe(r.method)} ${safe(r.url)}`;
  const tail = `${sizeText(r.bytes)} ${durationText(r.durationMs)}`;
  if (!color) return `${head} ${r.status} ${tail}`;
  return `${head} ${statusColor(r.status)}${r.status}${RESET} ${DIM}${tail}${RESET}`;
}

/** The formatter for one of the two names above, or undefined for any other format. */
export function prettyAccessFormat(format: string): AccessFormatter | undefined {
  if (format === PRETTY_FORMAT) return (r) => prettyAccessLine(r, false);
  if (format === PRETTY_COLOR_FORMAT) return (r) => prettyAccessLine(r, true);
  return undefined;
}
