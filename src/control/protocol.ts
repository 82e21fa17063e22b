/**
 * The control socket's protocol: newline-terminated lines. The client sends plain commands
 * (`watch`, `status`); the master answers with one JSON object a line, which the client
 * checks field by field (`parseControlLine`) before it believes any of it.
 */
import type { StatusDoc } from '../metrics/master-metrics.js';

/** The first line after `watch`: who answers, and how many reloads it has started. */
export type Hello = { t: 'hello'; pid: number; seq: number };
/** A reload finished (ok or not). */
export type ReloadEvent = { t: 'reload'; seq: number; ok: boolean; detail: string };
/** The master did not understand a command. */
type ErrorReply = { t: 'error'; message: string };
/** The answer to `status`: the live picture. */
type StatusReply = { t: 'status' } & StatusDoc;

export type ServerMessage = Hello | ReloadEvent | ErrorReply | StatusReply;

/** A client may send a few short commands; anything longer is not a corral client. */
export const MAX_CLIENT_BYTES = 4096;

/**
 * The longest line a client reads from a master. A status of 1024 workers is about 250 KB;
 * a peer that sends more without a newline is not a corral master, and is not buffered on.
 */
export const MAX_SERVER_LINE_BYTES = 8 * 1024 * 1024;

const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isPid = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * One line from the master, checked: throws an Error saying what was wrong ("a malformed
 * line ...", "a malformed status reply ...") rather than handing on a value of the wrong shape.
 */
export function parseControlLine(line: string): ServerMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`a malformed line (not JSON): ${JSON.stringify(line.slice(0, 80))}`);
  }
  const m = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (m.t === 'hello' && isPid(m.pid) && isSeq(m.seq)) return { t: 'hello', pid: m.pid, seq: m.seq };
  if (m.t === 'reload' && isSeq(m.seq) && typeof m.ok === 'boolean') return { t: 'reload', seq: m.seq, ok: m.ok, detail: typeof m.detail === 'string' ? m.detail : '' };
  if (m.t === 'error' && typeof m.message === 'string') return { t: 'error', message: m.message };
  if (m.t === 'status') return { t: 'status', ...statusDoc(m) };
  throw new Error(`a malformed line (not a control message): ${JSON.stringify(line.slice(0, 80))}`);
}

/** `number?`: a field newer masters send; absent in an older master's answer, and left absent. */
type Kind = 'number' | 'string' | 'number|null' | 'number?' | 'string?';

const MASTER: Record<keyof StatusDoc['master'], Kind> = {
  pid: 'number', uptimeS: 'number', phase: 'string', generation: 'number', workersDesired: 'number', lastReload: 'string', requests: 'number',
  workersMin: 'number?', workersMax: 'number?', scaling: 'string?',
};
const LISTENER: Record<keyof StatusDoc['listeners'][number], Kind> = { label: 'string', queue: 'number|null', limit: 'number|null' };
const WORKER: Record<keyof StatusDoc['workers'][number], Kind> = {
  slot: 'number', pid: 'number', generation: 'number', state: 'string', uptimeS: 'number', requests: 'number', inflight: 'number',
  rssBytes: 'number', eventLoopDelayS: 'number|null', lastCheckinS: 'number', websockets: 'number?', streams: 'number?', loopBusy: 'number?',
};

function fits(v: unknown, kind: Kind): boolean {
  if (kind === 'string') return typeof v === 'string';
  if (kind === 'string?') return typeof v === 'string' || v === undefined;
  return (typeof v === 'number' && Number.isFinite(v)) || (kind === 'number|null' && v === null) || (kind === 'number?' && v === undefined);
}

/** An object with exactly the fields `shape` names (extra fields are dropped), each of its kind. */
function record<T>(v: unknown, shape: Record<keyof T, Kind>, where: string): T {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`a malformed status reply: ${where} is not an object`);
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, kind] of Object.entries(shape) as Array<[string, Kind]>) {
    if (!fits(o[key], kind)) throw new Error(`a malformed status reply: ${where}.${key} is ${key in o ? JSON.stringify(o[key]).slice(0, 40) : 'missing'}, not a ${kind === 'number?' ? 'number (or absent)' : kind === 'string?' ? 'string (or absent)' : kind}`);
    if (o[key] !== undefined) out[key] = o[key];
  }
  return out as T;
}

function list<T>(v: unknown, shape: Record<keyof T, Kind>, where: string): T[] {
  if (!Array.isArray(v)) throw new Error(`a malformed status reply: ${where} is not a list`);
  return v.map((item, i) => record<T>(item, shape, `${where}[${i}]`));
}

function statusDoc(m: Record<string, unknown>): StatusDoc {
  return {
    master: record<StatusDoc['master']>(m.master, MASTER, 'master'),
    listeners: list<StatusDoc['listeners'][number]>(m.listeners, LISTENER, 'listeners'),
    workers: list<StatusDoc['workers'][number]>(m.workers, WORKER, 'workers'),
  };
}
