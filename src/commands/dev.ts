/**
 * `corral dev`: the master with one worker, reloaded on every saved change. A reload is the
 * master's HUP: the socket stays open and the last good worker serves until the new one is
 * ready, so no request is refused; a change that breaks the app leaves the old worker
 * serving and is shown once, with its source. A warm spare process (dev/spare-entry.ts) makes a
 * reload cost the app's import rather than a Node start.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { resolveAppConfig, type Resolution } from '../config/resolve.js';
import type { SettingName } from '../config/settings.js';
import { fixed } from '../config/worker-range.js';
import { CorralError } from '../errors.js';
import { logTargets } from '../logging/destinations.js';
import { withTerminalAccessFormat } from '../logging/terminal-access.js';
import { parseAppRef } from '../worker/app-loader.js';
import { DevSession } from '../dev/session.js';
import { Watcher } from '../dev/watch.js';

export interface DevOptions {
  watch?: string[];
  ignore?: string[];
  poll?: boolean;
  pollInterval?: string;
  debounce?: string;
  spare?: boolean;
}

/** Quiet enough for a burst of saves or a `tsc --watch` rebuild, short enough not to be felt. */
const DEFAULT_DEBOUNCE_MS = 20;
const DEFAULT_POLL_MS = 500;

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
  if (unset('workers')) c.workers = fixed(1);
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

export async function dev(cli: Partial<Record<SettingName, unknown>>, opts: DevOptions): Promise<void> {
  // The environment as corral was started with, read again at each HUP.
  const env = { ...process.env };
  const cwd = process.cwd();
  const debounceMs = ms(opts.debounce, DEFAULT_DEBOUNCE_MS, '--debounce', 0);
  const pollMs = ms(opts.pollInterval, DEFAULT_POLL_MS, '--poll-interval', 20);
  const load = async () => devDefaults(await resolveAppConfig({ cli, env, cwd }), cwd);
  const resolution = await load();
  const entry = appFile(resolution, cwd);
  const targets = logTargets(resolution, cwd);
  const logFiles = [targets.access, targets.error].flatMap((t) => (t.kind === 'file' ? [t.path] : []));
  const session = await DevSession.open({
    resolution,
    load,
    cwd,
    entry,
    spare: opts.spare !== false,
    watchNote: opts.poll ? ` (polling every ${pollMs} ms)` : '',
    watcher: (onChange, onWarning) => new Watcher({
      roots: opts.watch?.length ? opts.watch.map((p) => resolve(cwd, p)) : [dirname(entry)],
      files: [resolution.envFile, ...(resolution.configFile ? [resolution.configFile] : [])],
      ignore: opts.ignore ?? [],
      ignorePaths: [...logFiles, ...(resolution.config.logDir ? [resolve(cwd, resolution.config.logDir)] : [])],
      keep: [entry],
      poll: opts.poll === true,
      pollIntervalMs: pollMs,
      debounceMs,
      onChange,
      onWarning,
    }),
  });
  await session.run();
}
