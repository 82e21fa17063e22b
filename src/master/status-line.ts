import type { MasterPhase } from './states.js';

interface StatusInput {
  phase: MasterPhase;
  current: { id: number; target: number; ready: number } | undefined;
  pending: { id: number; target: number; ready: number } | undefined;
  draining: number;
  lastReload: string;
  /** During a shutdown delay: how long until the drain starts. */
  drainInMs?: number | undefined;
}

/** The one-line STATUS= shown by `systemctl status`. */
export function statusLine(s: StatusInput): string {
  const parts: string[] = [];
  if (s.phase === 'stopping') {
    parts.push(s.drainInMs === undefined ? 'stopping' : `stopping: shutdown delay, not ready, draining in ${Math.ceil(s.drainInMs / 1000)} s`);
  }
  if (s.current) parts.push(`${s.current.ready}/${s.current.target} workers serving (generation ${s.current.id})`);
  if (s.pending) parts.push(`${s.current ? 'reloading' : 'booting'}: generation ${s.pending.id} ${s.pending.ready}/${s.pending.target} ready`);
  if (s.draining > 0) parts.push(`${s.draining} draining`);
  parts.push(`last reload: ${s.lastReload}`);
  return parts.join('; ');
}
