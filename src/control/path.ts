import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Where a master's control socket lives: $RUNTIME_DIRECTORY (systemd RuntimeDirectory=)
 * when set, else the temp directory. A client that lacks RUNTIME_DIRECTORY (a shell)
 * reads it from the master's own environment in /proc when it may.
 */
export function controlSocketPath(pid: number, env: NodeJS.ProcessEnv = process.env): string {
  return join(runtimeDir(env) ?? tmpdir(), `corral-${pid}.sock`);
}

function runtimeDir(env: NodeJS.ProcessEnv): string | undefined {
  const dir = env.RUNTIME_DIRECTORY;
  return dir ? dir.split(':')[0] : undefined;
}

/** Candidate paths for a client looking for master PID's socket, most likely first. */
export function candidateSocketPaths(pid: number): string[] {
  const out = [controlSocketPath(pid)];
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const line = environ.find((l) => l.startsWith('RUNTIME_DIRECTORY='));
    if (line) out.unshift(controlSocketPath(pid, { RUNTIME_DIRECTORY: line.slice('RUNTIME_DIRECTORY='.length) }));
  } catch {
    // not ours to read
  }
  out.push(join(tmpdir(), `corral-${pid}.sock`));
  return [...new Set(out)];
}

/** Where systemd puts a named app's runtime directory (RuntimeDirectory=corral/%i). */
const RUN_ROOT = '/run/corral';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Masters with a control socket in dir: corral-PID.sock whose PID runs. */
function mastersIn(dir: string): MasterSocket[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^corral-([1-9]\d{0,6})\.sock$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), path: join(dir, m[0]) }))
    .filter((m) => alive(m.pid));
}

interface MasterSocket {
  pid: number;
  path: string;
}

/**
 * The one master running here, for a client given no PID: the only live corral-PID.sock in
 * /run/corral/NAME (an installed service), or else in $RUNTIME_DIRECTORY, then the temp
 * directory. Its socket is not trusted yet: the caller checks it as for a PID it was given.
 * Throws a plain Error saying why none (or several) were found.
 */
export function findOnlyMaster(name: string | undefined, env: NodeJS.ProcessEnv = process.env): MasterSocket {
  const own = runtimeDir(env);
  const dirs = name !== undefined ? [join(RUN_ROOT, name)] : [...(own ? [own] : []), tmpdir()];
  for (const dir of dirs) {
    const found = mastersIn(dir);
    if (found.length === 1) return found[0]!;
    if (found.length > 1) throw new Error(`several corral masters in ${dir} (PIDs ${found.map((f) => f.pid).join(', ')}): give the PID`);
  }
  throw new Error(`no running corral master found in ${dirs.join(', ')}: give its PID${name === undefined ? ' or --name NAME' : ''}`);
}
