import { readFileSync } from 'node:fs';

/**
 * Whether a process with this PID is still running (signal 0 checks without signalling). A
 * zombie counts as gone: it has exited, and an orphan's zombie stays until the PID 1 of this
 * machine reaps it, which may take a while.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
