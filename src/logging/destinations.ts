import { accessSync, constants, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Resolution } from '../config/resolve.js';
import { CorralError } from '../errors.js';

export type Target = { kind: 'off' } | { kind: 'std'; fd: 1 | 2 } | { kind: 'file'; path: string };

export interface LogTargets {
  access: Target;
  error: Target;
}

/**
 * Where the access and error logs go. `-` is stdout/stderr; a relative path lives in
 * log-dir (else the working directory); with log-dir set and a log left at its default,
 * that log is log-dir/access.log or log-dir/error.log.
 */
export function logTargets(r: Resolution, cwd: string): LogTargets {
  const cfg = r.config;
  const base = cfg.logDir ? resolve(cwd, cfg.logDir) : cwd;
  const pick = (value: string, fromDefault: boolean, name: string, fd: 1 | 2): Target => {
    if (value === 'off') return { kind: 'off' };
    if (value === '-') return fromDefault && cfg.logDir ? { kind: 'file', path: resolve(base, name) } : { kind: 'std', fd };
    return { kind: 'file', path: resolve(base, value) };
  };
  const error = pick(cfg.errorLog, r.sources.errorLog.layer === 'default', 'error.log', 2);
  if (error.kind === 'off') throw new CorralError('E_CONFIG_VALUE', 'error-log: "off" is not valid: the error log cannot be turned off (use - for stderr)');
  return {
    access: pick(cfg.accessLog, r.sources.accessLog.layer === 'default', 'access.log', 1),
    error,
  };
}

function whoAmI(): string {
  const u = userInfo();
  return `user ${u.username} (uid ${u.uid})`;
}

/** Refuses to start when a log file cannot be written: names the path and the user. */
export function checkLogTargets(t: LogTargets, logDir: string | undefined, cwd: string): void {
  if (logDir) checkDir(resolve(cwd, logDir), 'log-dir');
  for (const [name, target] of [['access log', t.access], ['error log', t.error]] as const) {
    if (target.kind !== 'file') continue;
    const dir = resolve(target.path, '..');
    checkDir(dir, `${name} directory`);
    try {
      if (statSync(target.path).isFile()) accessSync(target.path, constants.W_OK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new CorralError('E_LOG_PATH', `${name} ${target.path} is not writable by ${whoAmI()}: fix its owner or mode`);
    }
  }
}

function checkDir(dir: string, what: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new CorralError('E_LOG_PATH', `${what} ${dir} does not exist: create it, writable by ${whoAmI()} (under systemd, LogsDirectory= does this)`);
  }
  if (!isDir) throw new CorralError('E_LOG_PATH', `${what} ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new CorralError('E_LOG_PATH', `${what} ${dir} is not writable by ${whoAmI()}: fix its owner or mode`);
  }
}
