import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { CorralError } from '../errors.js';

/**
 * Clears the way to bind a unix socket at `path`: a socket file left by a process that died
 * is removed; one that still accepts connections is in use; any other file is not ours to
 * remove. `what` names the address in the errors ("unix:/run/app.sock", "metrics-bind ...").
 */
export async function removeStaleSocket(path: string, what: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new CorralError('E_BIND_FAILED', `cannot bind ${what}: ${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new CorralError('E_BIND_IN_USE', `cannot bind ${what}: another process is listening on ${path}`);
  try {
    unlinkSync(path);
  } catch {
    // removed meanwhile by someone else: the way is clear all the same
  }
}
