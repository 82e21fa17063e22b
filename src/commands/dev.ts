/**
 * `corral dev`: the master with one worker, reloaded on every saved change. A reload is the
 * master's HUP: the socket stays open and the last good worker serves until the new one is
 * ready, so no request is refused; a change that breaks the app leaves the old worker
 * serving and is shown once, with its source. A warm spare process (spare.ts) makes a
 * reload cost the app's import rather than a Node start.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { resolveAppConfig, type Resolution } from '../config/resolve.js';
import type { SettingName } from '../config/settings.js';
import { ControlServer } from '../control/server.js';
import { controlSocketPath } from '../control/path.js';
import { CorralError, isCorralError } from '../errors.js';
import { acquireListeners } from '../listeners/acquire.js';
import { parseBind } from '../listeners/bind-spec.js';
import { logTargets } from '../logging/destinations.js';
import { createLogger } from '../logging/logger.js';
import { withTerminalAccessFormat } from '../logging/terminal-access.js';
import { Master } from '../master/master.js';
import { realRuntime } from '../master/runtime.js';
import type { MasterLogs } from '../master/master-logs.js';
import { Notifier } from '../systemd/notify.js';
import { workerEnv } from '../systemd/env.js';
import { parseAppRef } from '../worker/app-loader.js';
import { enableOptimizer } from '../startup-tiering.js';
import { DevErrorLog, DevTerminal } from '../dev/terminal.js';
import { SparePool } from '../dev/spares.js';
import { Watcher } from '../dev/watch.js';
import { openLogs } from './serve.js';

export interface DevOptions {
  watch?: string[];
  ignore?: string[];
  poll?: boolean;
  pollInterval?: string;
  debounce?: string;
  spare?: boolean;
}

/** Quiet enough for a burst of saves or a `tsc --watch` rebuild, short enough not to be felt. */
export const DEFAULT_DEBOUNCE_MS = 20;
export const DEFAULT_POLL_MS = 500;

function ms(value: string | undefined, dflt: number, flag: string, min: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CorralError('E_CONFIG_VALUE', `${flag} (from command line): ${JSON.stringify(value)} is not valid: must be a whole number of milliseconds, at least ${min}`);
  return n;
}

/** Dev's own defaults, each only where no layer set the setting: one worker, readable output. */
function devDefaults(r: Resolution, cwd: string): Resolution {
  const c = r.config;
  const unset = (n: SettingName) => r.sources[n].layer === 'default';
  if (unset('workers')) c.workers = 1;
  // The master's routine lines (spawned, drained, reload #n) are replaced by the terminal's.
  if (unset('logLevel')) c.logLevel = 'warn';
  if (unset('logFormat')) c.logFormat = 'pretty';
  return withTerminalAccessFormat(r, cwd, true);
}

/** The app's file, without an `:export` suffix. */
function appFile(r: Resolution, cwd: string): string {
  const { path } = parseAppRef(r.config.app!);
  return isAbsolute(path) ? path : resolve(cwd, path);
}

type Wake = 'change' | 'stop';

export async function dev(cli: Partial<Record<SettingName, unknown>>, opts: DevOptions): Promise<void> {
  const realEnv = { ...process.env };
  const cwd = process.cwd();
  const debounceMs = ms(opts.debounce, DEFAULT_DEBOUNCE_MS, '--debounce', 0);
  const pollMs = ms(opts.pollInterval, DEFAULT_POLL_MS, '--poll-interval', 20);
  const load = async () => {
    return devDefaults(await resolveAppConfig({ cli, env: realEnv, cwd }), cwd);
  };
  let resolution = await load();
  const entry = appFile(resolution, cwd);
  const color = process.stderr.isTTY === true;
  const baseEnv = workerEnv(process.env);

  const targets = logTargets(resolution, cwd);
  const logFiles = [targets.access, targets.error].flatMap((t) => (t.kind === 'file' ? [t.path] : []));
  let terminal: DevTerminal | undefined;
  const changedSinceGood = new Set<string>();
  let changeAt: number | undefined;
  let onChange: ((files: string[]) => void) | undefined;
  const watcher = new Watcher({
    roots: opts.watch?.length ? opts.watch.map((p) => resolve(cwd, p)) : [dirname(entry)],
    files: [resolution.envFile, ...(resolution.configFile ? [resolution.configFile] : [])],
    ignore: opts.ignore ?? [],
    ignorePaths: [...logFiles, ...(resolution.config.logDir ? [resolve(cwd, resolution.config.logDir)] : [])],
    keep: [entry],
    poll: opts.poll === true,
    pollIntervalMs: pollMs,
    debounceMs,
    onChange: (files) => onChange?.(files),
    onWarning: (m) => terminal?.warn(m),
  });

  const pool = new SparePool(opts.spare !== false);
  let rl: Interface | undefined;
  let manual: (() => void) | undefined;
  if (process.stdin.readable) {
    rl = createInterface({ input: process.stdin, terminal: false });
    rl.on('line', (line) => {
      if (line.trim() === 'rs') manual?.();
    });
  }
  watcher.start();
  // One terminal for the whole session; it writes to the error log of the current attempt
  // (the master closes its log writers when it stops).
  let logs = await openLogs(resolution, cwd);
  const term = new DevTerminal((t) => logs.errorLog.sink.write(t), cwd, color);
  terminal = term;
  try {
    for (;;) {
      const failure = await runOnce(logs, term);
      logs = await openLogs(resolution, cwd);
      if (!failure) return;
      // The first generation could not start: nothing serves yet, so wait for a fix.
      await term.showBootError(failure.message, [...changedSinceGood, entry], 'the app did not start; waiting for a change (or rs + Enter) to try again');
      if ((await nextChange()) === 'stop') return;
      resolution = await load().catch((err: unknown) => {
        term.warn(`configuration: ${(err as Error).message}`);
        return resolution;
      });
      await logs.errorLog.sink.close();
      logs = await openLogs(resolution, cwd);
    }
  } finally {
    watcher.close();
    pool.close();
    rl?.close();
    process.stdin.destroy();
    await logs.errorLog.sink.close();
  }

  /** Waits (without a master) for a change, `rs`, or Ctrl-C. */
  function nextChange(): Promise<Wake> {
    return new Promise((resolveWake) => {
      const done = (w: Wake) => {
        onChange = undefined;
        manual = undefined;
        for (const s of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.off(s, stop);
        resolveWake(w);
      };
      const stop = () => done('stop');
      for (const s of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.once(s, stop);
      onChange = (files) => {
        for (const f of files) changedSinceGood.add(f);
        terminal?.dim(`${files.map((f) => terminal!.short(f)).join(', ')} changed: starting again`);
        done('change');
      };
      manual = () => done('change');
    });
  }

  /** One master, until it stops (undefined) or its first generation fails to start. */
  async function runOnce(logs: MasterLogs, term: DevTerminal): Promise<CorralError | undefined> {
    const notifier = new Notifier(process.env);
    logs.errorLog = new DevErrorLog(logs.errorLog, term);
    pool.logs = logs;
    const log = createLogger({ level: resolution.config.logLevel, base: { pid: process.pid, role: 'master' } }, { write: (line: string) => logs.errorLog.line(line) });
    const listeners = await acquireListeners(resolution.config.bind.map(parseBind), { unixSocketMode: resolution.config.unixSocketMode });
    const control = await ControlServer.listen(controlSocketPath(process.pid)).catch(() => undefined);
    const reload = (why: string) => {
      changeAt ??= performance.now();
      term.dim(why);
      process.kill(process.pid, 'SIGHUP');
    };
    const master = new Master({
      resolution, listeners, log, logs, notifier, control, baseEnv, cwd,
      runtime: { ...realRuntime(logs), spawn: pool.spawn },
      reloadConfig: load,
      onServing: () => {
        enableOptimizer();
        changedSinceGood.clear();
        term.clearShown();
        const where = listeners.map((l) => (/^[\d.:[\]a-f]+:\d+$/i.test(l.label) ? `http://${l.label}` : l.label)).join(', ');
        const n = resolution.config.workers;
        term.ok(`serving ${term.short(entry)} on ${where} (${n} worker${n === 1 ? '' : 's'}, pid ${process.pid})`);
        term.dim(`watching ${watcher.what.map((p) => term.short(p) || '.').join(', ')}${opts.poll ? ` (polling every ${pollMs} ms)` : ''}; rs + Enter reloads, Ctrl-C stops`);
        onChange = (files) => {
          for (const f of files) changedSinceGood.add(f);
          reload(`${files.slice(0, 3).map((f) => term.short(f)).join(', ')}${files.length > 3 ? ` and ${files.length - 3} more` : ''} changed`);
        };
        manual = () => reload('rs: reloading');
      },
      onReload: (ok, detail) => {
        const took = changeAt === undefined ? '' : ` in ${Math.round(performance.now() - changeAt)} ms`;
        changeAt = undefined;
        if (ok) {
          changedSinceGood.clear();
          term.clearShown();
          term.ok(`reloaded${took}`);
          return;
        }
        void term.showBootError(detail, [...changedSinceGood, entry], 'reload failed: the last good version keeps serving; save a fix to reload');
      },
    });
    try {
      await master.run();
      return undefined;
    } catch (err) {
      if (!isCorralError(err) || (err.code !== 'E_APP_LOAD' && err.code !== 'E_WORKER_BOOT')) throw err;
      return err;
    } finally {
      onChange = undefined;
      manual = undefined;
    }
  }
}
