import { readFileSync } from 'node:fs';
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
