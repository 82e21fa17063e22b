import { CorralError } from '../errors.js';

export interface PassedSocket {
  fd: number;
  name: string;
}

const SD_LISTEN_FDS_START = 3;

/** Linux's default ceiling on a process's descriptors (fs.nr_open): a bound when no better one is known. */
export const MAX_DESCRIPTORS = 1 << 20;

/**
 * Reads systemd's socket-activation variables, as sd_listen_fds(3) does. LISTEN_FDS counts
 * descriptors from fd 3, LISTEN_FDNAMES names them (colon separated). `maxCount` bounds
 * LISTEN_FDS by the descriptors this process really has open (a count above it names
 * descriptors that cannot exist). Returns [] when none were passed.
 *
 * LISTEN_PID, following the man page: "if $LISTEN_FDS/$LISTEN_PID was not set or was not
 * correctly set for this daemon", no descriptors were received (they were inherited by
 * accident from a parent), so another PID means none; "on failure" it returns a negative
 * errno, and systemd's implementation fails with -EINVAL on a LISTEN_PID that is not a PID,
 * which corral reports as a configuration error naming the variable instead of ignoring
 * it. One departure: LISTEN_FDS without any LISTEN_PID is taken as meant for us (the
 * man page would ignore it), as before; the descriptors are still checked to be sockets.
 */
export function parseListenFds(env: NodeJS.ProcessEnv, pid: number, maxCount = MAX_DESCRIPTORS): PassedSocket[] {
  const forPid = env.LISTEN_PID;
  if (forPid !== undefined && !/^[1-9]\d{0,9}$/.test(forPid)) {
    throw new CorralError('E_LISTEN_FDS', `LISTEN_PID=${JSON.stringify(forPid)} is not a process ID (it must be the PID of the process the sockets are for)`);
  }
  if (forPid !== undefined && Number(forPid) !== pid) return [];
  const count = env.LISTEN_FDS;
  if (count === undefined) return [];
  if (!/^\d+$/.test(count)) throw new CorralError('E_LISTEN_FDS', `LISTEN_FDS=${JSON.stringify(count)} is not a number of descriptors`);
  const n = Number(count);
  if (n > maxCount) {
    throw new CorralError('E_LISTEN_FDS', `LISTEN_FDS=${count} is more descriptors than this process has open from fd ${SD_LISTEN_FDS_START} up (${maxCount}); it must count the sockets passed from fd ${SD_LISTEN_FDS_START}`);
  }
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  if (env.LISTEN_FDNAMES !== undefined && names.length !== n) {
    throw new CorralError('E_LISTEN_FDS', `LISTEN_FDNAMES has ${names.length} name(s) but LISTEN_FDS=${n}`);
  }
  return Array.from({ length: n }, (_, i) => ({ fd: SD_LISTEN_FDS_START + i, name: names[i] ?? 'unknown' }));
}
