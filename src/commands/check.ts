import { accessSync, constants, existsSync, statSync } from 'node:fs';
import * as net from 'node:net';
import { dirname, resolve } from 'node:path';
import { resolveConfig, type Resolution } from '../config/resolve.js';
import { logTargets } from '../logging/destinations.js';
import type { ResolvedConfig, SettingName } from '../config/settings.js';
import { CorralError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { parseBind } from '../listeners/bind-spec.js';
import { parseListenFds } from '../systemd/listen-fds.js';
import { loadApp } from '../worker/app-loader.js';
import { requireApp } from './serve.js';

interface Finding {
  ok: boolean;
  what: string;
  exit?: number;
}

/** `corral check`: the start's validation plus app load, binds and log paths, without serving. */
export async function check(cli: Partial<Record<SettingName, unknown>>): Promise<void> {
  const cwd = process.cwd();
  const r = await resolveConfig({ cli, env: process.env, cwd });
  requireApp(r);
  const findings: Finding[] = [{ ok: true, what: `settings valid${r.configFile ? ` (config file ${r.configFile})` : ''}` }];
  findings.push(await checkApp(r.config, cwd));
  findings.push(...(await checkBinds(r.config)));
  findings.push(...checkLogPaths(r, cwd));
  for (const f of findings) process.stdout.write(`${f.ok ? 'ok  ' : 'FAIL'}  ${f.what}\n`);
  const failed = findings.filter((f) => !f.ok);
  if (failed.length > 0) {
    const err = new CorralError('E_CHECK_FAILED', `${failed.length} problem(s) found`);
    (err as { exitCode: number }).exitCode = failed.some((f) => f.exit === EXIT.APP_LOAD) ? EXIT.APP_LOAD : EXIT.CONFIG;
    throw err;
  }
  // The app may have opened handles (pools, timers) while loading; do not wait for them.
  process.exit(0);
}

async function checkApp(cfg: ResolvedConfig, cwd: string): Promise<Finding> {
  try {
    const app = await loadApp(cfg.app!, cwd);
    return { ok: true, what: `app ${cfg.app} loads (${app.kind}${app.init ? ', with init hook' : ''}${app.close ? ', with close hook' : ''})` };
  } catch (err) {
    return { ok: false, what: `app ${cfg.app}: ${(err as Error).message.split('\n')[0]}`, exit: EXIT.APP_LOAD };
  }
}

async function checkBinds(cfg: ResolvedConfig): Promise<Finding[]> {
  const passed = parseListenFds(process.env, process.pid);
  if (passed.length > 0) return [{ ok: true, what: `systemd passed ${passed.length} socket(s): ${passed.map((p) => p.name).join(', ')}` }];
  const out: Finding[] = [];
  for (const text of cfg.bind) {
    const b = parseBind(text);
    if (b.kind === 'fd') {
      out.push({ ok: existsSync(`/proc/self/fd/${b.fd}`), what: `bind ${b.text}: descriptor ${existsSync(`/proc/self/fd/${b.fd}`) ? 'open' : 'not open'}` });
      continue;
    }
    if (b.kind === 'unix') {
      const dir = dirname(resolve(b.path));
      const writable = isWritableDir(dir);
      out.push({ ok: writable, what: `bind ${b.text}: directory ${dir} ${writable ? 'writable' : 'missing or not writable'}` });
      continue;
    }
    out.push(await probeTcp(b.host, b.port, b.text));
  }
  return out;
}

function probeTcp(host: string, port: number, text: string): Promise<Finding> {
  return new Promise((resolvePromise) => {
    const s = net.createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolvePromise({ ok: false, what: `bind ${text}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.code}` }));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolvePromise({ ok: true, what: `bind ${text}: free` })));
  });
}

function isWritableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function checkLogPaths(r: Resolution, cwd: string): Finding[] {
  const out: Finding[] = [];
  const cfg = r.config;
  const logDir = cfg.logDir ? resolve(cwd, cfg.logDir) : undefined;
  if (logDir) {
    const ok = isWritableDir(logDir);
    out.push({ ok, what: `log-dir ${cfg.logDir} ${ok ? 'writable' : 'missing or not writable'}` });
  }
  // The same resolution as `serve` (relative paths live in log-dir).
  const targets = logTargets(r, cwd);
  for (const [name, target] of [['access-log', targets.access], ['error-log', targets.error]] as const) {
    if (target.kind !== 'file') continue;
    const dir = dirname(target.path);
    if (dir === logDir && !isWritableDir(dir)) continue; // already reported above
    const ok = isWritableDir(dir);
    out.push({ ok, what: `${name} ${target.path}: directory ${dir} ${ok ? 'writable' : 'missing or not writable'}` });
  }
  return out;
}
