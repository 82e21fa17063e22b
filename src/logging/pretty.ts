import { levelColor } from './levels.js';

const KNOWN = new Set(['level', 'time', 'pid', 'role', 'worker', 'msg', 'err', 'stack', 'hostname']);

/** A human-readable line for a terminal: time, level, who, message, other fields, stack. */
export function pretty(rec: Record<string, unknown>, color = process.stderr.isTTY === true): string {
  const level = String(rec.level ?? 'info');
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : '';
  const who = rec.role === 'master' ? `master ${rec.pid}` : `${rec.role ?? 'worker'} ${rec.worker ?? ''} ${rec.pid ?? ''}`.replace(/\s+/g, ' ').trim();
  const tag = color ? `\x1b[${levelColor(level)}m${level.toUpperCase().padEnd(5)}\x1b[0m` : level.toUpperCase().padEnd(5);
  const extra = Object.entries(rec).filter(([k]) => !KNOWN.has(k));
  let out = `${time} ${tag} [${who}] ${String(rec.msg ?? '')}`;
  if (extra.length > 0) out += ' ' + extra.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  const err = rec.err as { stack?: string; message?: string } | undefined;
  const stack = err?.stack ?? (typeof rec.stack === 'string' ? rec.stack : undefined);
  if (stack) out += '\n    ' + stack.split('\n').join('\n    ');
  return out;
}
