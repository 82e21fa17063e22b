import { resolveConfig, type Resolution } from '../config/resolve.js';
import type { SettingName } from '../config/settings.js';
import { ControlServer } from '../control/server.js';
import { controlSocketPath } from '../control/path.js';
import { CorralError } from '../errors.js';
import { acquireListeners } from '../listeners/acquire.js';
import { parseBind } from '../listeners/bind-spec.js';
import { createLogger } from '../logging/logger.js';
import { Master } from '../master/master.js';
import { MASTER_ONLY_ENV, Notifier } from '../master/notify.js';

export function requireApp(r: Resolution): void {
  if (!r.config.app) {
    throw new CorralError('E_NO_APP', 'no app to serve: pass APP[:EXPORT] (e.g. `corral server.mjs`), or set `app` in the config file or CORRAL_APP');
  }
}

/** `corral serve`: the master. */
export async function serve(cli: Partial<Record<SettingName, unknown>>): Promise<void> {
  const realEnv = { ...process.env };
  const cwd = process.cwd();
  const resolution = await resolveConfig({ cli, env: realEnv, cwd });
  requireApp(resolution);
  const cfg = resolution.config;
  const log = createLogger({ level: cfg.logLevel, base: { pid: process.pid, role: 'master' } });
  const notifier = new Notifier(process.env);
  const { listeners } = await acquireListeners(cfg.bind.map(parseBind), { unixSocketMode: cfg.unixSocketMode });
  const control = await ControlServer.listen(controlSocketPath(process.pid)).catch((err: Error) => {
    log.warn(`control socket unavailable (${err.message}); \`corral reload --wait\` will not work`);
    return undefined;
  });

  const baseEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const k of MASTER_ONLY_ENV) delete baseEnv[k];
  for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete realEnv[k];

  const master = new Master({
    resolution,
    listeners,
    log,
    notifier,
    control,
    baseEnv,
    cwd,
    reloadConfig: async () => {
      const next = await resolveConfig({ cli, env: realEnv, cwd });
      requireApp(next);
      return next;
    },
  });
  await master.run();
}
