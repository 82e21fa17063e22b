/**
 * The control socket's protocol: newline-terminated lines. The client sends plain commands
 * (`watch`); the master answers with one JSON object a line.
 */

/** The first line after `watch`: who answers, and how many reloads it has started. */
export type Hello = { t: 'hello'; pid: number; seq: number };
/** A reload finished (ok or not). */
export type ReloadEvent = { t: 'reload'; seq: number; ok: boolean; detail: string };
/** The master did not understand a command. */
export type ErrorReply = { t: 'error'; message: string };

export type ServerMessage = Hello | ReloadEvent | ErrorReply;

/** A client may send a few short commands; anything longer is not a corral client. */
export const MAX_CLIENT_BYTES = 4096;

const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * One line from the master, checked: throws an Error saying what was wrong ("a malformed
 * line ...") rather than handing on a value of the wrong shape.
 */
export function parseControlLine(line: string): ServerMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`a malformed line (not JSON): ${JSON.stringify(line.slice(0, 80))}`);
  }
  const m = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (m.t === 'hello' && Number.isSafeInteger(m.pid) && (m.pid as number) > 0 && isSeq(m.seq)) return { t: 'hello', pid: m.pid as number, seq: m.seq };
  if (m.t === 'reload' && isSeq(m.seq) && typeof m.ok === 'boolean') return { t: 'reload', seq: m.seq, ok: m.ok, detail: typeof m.detail === 'string' ? m.detail : '' };
  if (m.t === 'error' && typeof m.message === 'string') return { t: 'error', message: m.message };
  throw new Error(`a malformed line (not a control message): ${JSON.stringify(line.slice(0, 80))}`);
}
