import { CorralError } from '../errors.js';

export interface PassedSocket {
  fd: number;
  name: string;
}

export const SD_LISTEN_FDS_START = 3;

/**
 * Reads systemd's socket-activation variables (sd_listen_fds(3)): LISTEN_PID must be our
 * PID (the variables may have been inherited by accident), LISTEN_FDS counts descriptors
 * from fd 3, LISTEN_FDNAMES names them (colon separated). Returns [] when none were passed.
 */
export function parseListenFds(env: NodeJS.ProcessEnv, pid: number): PassedSocket[] {
  const count = env.LISTEN_FDS;
  if (count === undefined) return [];
  if (!/^\d+$/.test(count)) throw new CorralError('E_LISTEN_FDS', `LISTEN_FDS=${JSON.stringify(count)} is not a number of descriptors`);
  const forPid = env.LISTEN_PID;
  if (forPid !== undefined && forPid !== '' && forPid !== String(pid)) return [];
  const n = Number(count);
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  if (env.LISTEN_FDNAMES !== undefined && names.length !== n) {
    throw new CorralError('E_LISTEN_FDS', `LISTEN_FDNAMES has ${names.length} name(s) but LISTEN_FDS=${n}`);
  }
  return Array.from({ length: n }, (_, i) => ({ fd: SD_LISTEN_FDS_START + i, name: names[i] ?? 'unknown' }));
}

/** Removes the activation variables so workers and the app's own children never see them. */
export function clearListenEnv(env: NodeJS.ProcessEnv): void {
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
}
