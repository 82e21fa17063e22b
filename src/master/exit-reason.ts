import type { WorkerHandle, WorkerState } from './worker-handle.js';

/** The log line for a worker's exit, with a hint where the cause is likely outside corral. */
export function describeExit(w: WorkerHandle, was: WorkerState): { message: string; level: 'info' | 'warn' | 'error' } {
  const { code, signal } = w.exit ?? { code: null, signal: null };
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  if (was === 'draining' && w.killedBy === undefined && (code === 0 || signal === 'SIGTERM')) {
    return { message: `${w.name} stopped (${w.stopReason ?? 'drained'})`, level: 'info' };
  }
  if (w.killedBy === 'SIGKILL' && signal === 'SIGKILL') {
    return { message: `${w.name} was killed by corral (${w.stopReason ?? w.bootFailure?.message ?? 'unresponsive'})`, level: was === 'draining' ? 'warn' : 'error' };
  }
  if (was === 'booting') {
    const why = w.bootFailure ? `: ${w.bootFailure.message}` : '';
    return { message: `${w.name} ${how} before it was ready${why}`, level: 'error' };
  }
  let hint = '';
  if (signal === 'SIGKILL') hint = ' (perhaps out of memory: see `journalctl -k` for the OOM killer, or MemoryMax= in the unit)';
  else if (signal === 'SIGSEGV' || signal === 'SIGBUS') hint = ' (a native addon crashed?)';
  else if (signal === 'SIGABRT') hint = ' (V8 aborted: heap limit reached? see --max-old-space-size)';
  return { message: `${w.name} ${how} while serving${hint}; replacing it`, level: 'error' };
}
