import { resolveAppConfig, type Resolution } from '../config/resolve.js';
import type { SettingName } from '../config/settings.js';
import { CorralError, isAppLoadCode, isCorralError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { bindListener, passedListeners } from '../listeners/acquire.js';
import { parseBind } from '../listeners/bind-spec.js';
import { logPathChecks, logTargets, type LogPathCheck } from '../logging/destinations.js';
import { workerEnv } from '../systemd/env.js';
import { loadApp } from '../worker/app-loader.js';
import { checkLaunchable } from './start-master.js';
import { dateWarning, describePair, loadPair, tlsFiles } from '../tls/pair.js';

interface Finding {
  ok: boolean;
  /** Not a failure, but worth acting on (a certificate close to its end). */
  warn?: boolean;
  what: string;
  exit?: number;
}

/**
 * `corral check`: the start's validation plus app load, binds and log paths, without
 * serving. The binds and log paths are checked by the very code `serve` runs (bound, then
 * released), so whatever would stop `serve` is found here.
 */
export async function check(cli: Partial<Record<SettingName, unknown>>): Promise<void> {
  const cwd = process.cwd();
  const r = await resolveAppConfig({ cli, env: process.env, cwd });
  const findings: Finding[] = [{ ok: true, what: `settings valid${r.configFile ? ` (config file ${r.configFile})` : ''}` }];
  findings.push(await checkApp(r.config.app!, cwd));
  findings.push(...(await checkBinds([...r.config.bind, ...r.config.tlsBind], r.config.unixSocketMode)));
  findings.push(...checkTls(r, cwd));
  findings.push(...checkLogPaths(logPathChecks(logTargets(r, cwd), r.config.logDir, cwd)));
  findings.push(checkWorkerEnv(r, cwd));
  for (const f of findings) process.stdout.write(`${!f.ok ? 'FAIL' : f.warn ? 'warn' : 'ok  '}  ${f.what}\n`);
  const failed = findings.filter((f) => !f.ok);
  if (failed.length > 0) {
    const appFailed = failed.some((f) => f.exit === EXIT.APP_LOAD);
    throw new CorralError('E_CHECK_FAILED', `${failed.length} problem(s) found`, { exitCode: appFailed ? EXIT.APP_LOAD : EXIT.CONFIG });
  }
  // The app may have opened handles (pools, timers) while loading; do not wait for them.
  process.exit(0);
}

async function checkApp(ref: string, cwd: string): Promise<Finding> {
  try {
    const app = await loadApp(ref, cwd);
    const warned = app.warnings?.length ? `; but ${app.warnings.join('; ')}` : '';
    return { ok: true, warn: warned !== '', what: `app ${ref} loads (${app.kind}${app.init ? ', with init hook' : ''}${app.close ? ', with close hook' : ''})${warned}` };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { ok: false, what: `app ${ref}: ${isAppLoadCode(code) ? `${code}: ` : ''}${(err as Error).message.split('\n')[0]}`, exit: EXIT.APP_LOAD };
  }
}

async function checkBinds(binds: string[], unixSocketMode: number): Promise<Finding[]> {
  let passed;
  try {
    passed = passedListeners();
  } catch (err) {
    return [failure(err, 'systemd sockets')];
  }
  if (passed.length > 0) return [{ ok: true, what: `systemd passed ${passed.length} socket(s): ${passed.map((p) => p.label).join(', ')}` }];
  const out: Finding[] = [];
  for (const text of binds) {
    const b = parseBind(text);
    try {
      const l = await bindListener(b, { unixSocketMode });
      l.close();
      out.push({ ok: true, what: `bind ${b.text}: ${b.kind === 'fd' ? 'an open socket to accept on' : 'free'}` });
    } catch (err) {
      out.push(failure(err, `bind ${b.text}`, `cannot bind ${b.text}: `));
    }
  }
  return out;
}

/**
 * The certificate and key as the master checks them before serving (readable, the key the
 * certificate's, in date, the chain parsed), and a warning when it ends within 14 days.
 */
function checkTls(r: Resolution, cwd: string): Finding[] {
  let files;
  try {
    files = tlsFiles(r.config, cwd);
    if (!files) return [];
    const pair = loadPair(files);
    const out: Finding[] = [{ ok: true, what: `tls: ${describePair(pair)}; the key matches${files.clientCa ? '; client certificates required (tls-client-ca)' : ''}` }];
    const warning = dateWarning(pair);
    if (warning) out.push({ ok: true, warn: true, what: `tls: ${warning}` });
    return out;
  } catch (err) {
    return [failure(err, 'tls')];
  }
}

/**
 * The environment and settings a worker would be started with, measured as serve does
 * before its first spawn. The binds stand in for the listeners (their labels are as long,
 * within the margin the check keeps). proxy-protocol items must name one of the binds; a
 * systemd:NAME item is taken as found, since the sockets systemd would pass are not here.
 */
function checkWorkerEnv(r: Resolution, cwd: string): Finding {
  const systemd = r.config.proxyProtocol.filter((i) => i.startsWith('systemd:'));
  const listeners = r.config.bind.map((text, i) => ({ fd: 3 + i, label: text, names: [parseBind(text).text, ...systemd], cleanup() {}, close() {} }));
  return attempt(() => checkLaunchable(r, listeners, workerEnv(process.env), undefined, cwd), 'workers can be started with this environment');
}

/** Each log path the way serve checks it; a file in a log-dir that failed is not reported again. */
function checkLogPaths(checks: LogPathCheck[]): Finding[] {
  const failedDirs = new Set<string>();
  const out: Finding[] = [];
  for (const c of checks) {
    if (c.inside && failedDirs.has(c.inside)) continue;
    const f = attempt(() => c.run(), `${c.what}: writable`);
    if (!f.ok && c.logDir) failedDirs.add(c.logDir);
    out.push(f);
  }
  return out;
}

function attempt(run: () => void, ok: string): Finding {
  try {
    run();
    return { ok: true, what: ok };
  } catch (err) {
    return failure(err, '');
  }
}

/** A known error's message as a finding (without a prefix that would repeat its subject). */
function failure(err: unknown, subject: string, prefix = ''): Finding {
  if (!isCorralError(err)) throw err;
  const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return { ok: false, what: subject ? `${subject}: ${message}` : message };
}
