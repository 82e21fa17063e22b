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

/** One check of a log path: `run` throws an E_LOG_PATH error that names the path and the user. */
export interface LogPathCheck {
  what: string;
  /** Set on the log-dir's own check. */
  logDir?: string;
  /** The log-dir this file lives in: checked once, by the log-dir's own check. */
  inside?: string;
  run(): void;
}

/** What must hold for the logs to be written: the log directory, then each log file's directory and file. */
export function logPathChecks(t: LogTargets, logDir: string | undefined, cwd: string): LogPathCheck[] {
  const out: LogPathCheck[] = [];
  const base = logDir ? resolve(cwd, logDir) : undefined;
  if (base) out.push({ what: `log-dir ${base}`, logDir: base, run: () => checkDir(base, 'log-dir') });
  for (const [name, target] of [['access log', t.access], ['error log', t.error]] as const) {
    if (target.kind !== 'file') continue;
    const dir = resolve(target.path, '..');
    out.push({
      what: `${name} ${target.path}`,
      inside: dir === base ? base : undefined,
      run: () => {
        if (dir !== base) checkDir(dir, `${name} directory`);
        try {
          if (statSync(target.path).isFile()) accessSync(target.path, constants.W_OK);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw new CorralError('E_LOG_PATH', `${name} ${target.path} is not writable by ${whoAmI()}: fix its owner or mode`);
        }
      },
    });
  }
  return out;
}

/** Refuses to start when a log file cannot be written: names the path and the user. */
export function checkLogTargets(t: LogTargets, logDir: string | undefined, cwd: string): void {
  for (const c of logPathChecks(t, logDir, cwd)) c.run();
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
