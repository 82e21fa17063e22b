import { lstatSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { candidateSocketPaths } from './path.js';

/** Builds the error a refusal throws: each command has its own code (E_RELOAD_TARGET, ...). */
type Refuse = (message: string) => Error;

/**
 * The control socket of master PID that a client may believe: the first candidate (`first`,
 * when the caller found one, then the usual places) that exists and passes `distrust`.
 * Refuses when PID does not exist, has no socket, or only sockets that someone other than
 * PID's user could have put there.
 *
 * Why file ownership: Node has no SO_PEERCRED, so the client cannot ask the kernel who
 * listens. It can check who owns the socket file and that nobody else could have swapped
 * it: the file belongs to the user that runs PID (the owner of /proc/PID), is writable by
 * no one else, and sits in a directory where only root or that user can replace it (or a
 * sticky one such as /tmp, where only the file's owner can). A socket that passes was made
 * by PID's user, who can signal PID anyway; the master's answer then has to name PID itself.
 */
export function trustedSocketPath(pid: number, refuse: Refuse, first?: string): string {
  const owner = processOwner(pid, refuse);
  const candidates = [...new Set([...(first ? [first] : []), ...candidateSocketPaths(pid)])];
  const refused: string[] = [];
  for (const path of candidates) {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    const why = distrust(path, st, owner, pid);
    if (why === undefined) return path;
    refused.push(why);
  }
  if (refused.length > 0) throw refuse(`not trusting the control socket of PID ${pid}: ${refused.join('; ')}`);
  throw refuse(`PID ${pid} has no corral control socket (looked in ${candidates.join(', ')}); is it a corral master?`);
}

/**
 * The uid that runs PID: the owner of /proc/PID. Where /proc hides it (hidepid, or
 * systemd's ProtectProc=invisible with PrivateUsers=, which gives ExecReload= a user
 * namespace of its own), a non-root caller that may signal PID shares its uid: kill(2)
 * allows that only when the caller's uid is the target's real or saved uid.
 */
function processOwner(pid: number, refuse: Refuse): number {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    try {
      process.kill(pid, 0);
      const uid = process.getuid?.();
      if (uid !== undefined && uid !== 0) return uid;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw refuse(`no process with PID ${pid}`);
    }
    throw refuse(`cannot see /proc/${pid} (is /proc mounted with hidepid?); run as the service's user or root`);
  }
}

/** Why a socket file at `path` might not be the master's; undefined when it can be trusted. */
function distrust(path: string, st: Stats, owner: number, pid: number): string | undefined {
  if (!st.isSocket()) return `${path} is not a socket`;
  if (st.uid !== owner) return `${path} belongs to uid ${st.uid}, but PID ${pid} runs as uid ${owner}`;
  if ((st.mode & 0o022) !== 0) return `${path} is writable by other users (mode ${(st.mode & 0o777).toString(8)})`;
  const dir = dirname(path);
  let d: Stats;
  try {
    d = statSync(dir);
  } catch {
    return `${dir} cannot be read`;
  }
  if (d.uid !== 0 && d.uid !== owner) return `its directory ${dir} belongs to uid ${d.uid}, who could replace it`;
  if ((d.mode & 0o002) !== 0 && (d.mode & 0o1000) === 0) return `its directory ${dir} is writable by anyone and not sticky, so anyone could replace it`;
  return undefined;
}
