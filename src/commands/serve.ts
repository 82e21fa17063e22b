import { resolveAppConfig, type Resolution } from '../config/resolve.js';
import { kebab, settingOf, type SettingName } from '../config/settings.js';
import { ControlServer } from '../control/server.js';
import { controlSocketPath } from '../control/path.js';
import { acquireListeners } from '../listeners/acquire.js';
import { parseBind } from '../listeners/bind-spec.js';
import { checkLogTargets, logTargets, type Target } from '../logging/destinations.js';
import { ErrorLog } from '../logging/error-log.js';
import { createLogger } from '../logging/logger.js';
import { Sink } from '../logging/sink.js';
import { isJournalStream } from '../systemd/journal.js';
import { withTerminalAccessFormat } from '../logging/terminal-access.js';
import { Master } from '../master/master.js';
import { Notifier } from '../systemd/notify.js';
import { LISTEN_ENV, workerEnv } from '../systemd/env.js';
import type { AccessPlan, MasterLogs } from '../master/master-logs.js';
import { AccessFiles } from '../logging/access-files.js';
import { enableOptimizer } from '../startup-tiering.js';
import { readFileSync } from 'node:fs';
import { metricsAddress } from '../metrics/server.js';

function corralVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Opens the log writers the master alone owns. */
export async function openLogs(r: Resolution, cwd: string): Promise<MasterLogs> {
  const cfg = r.config;
  const targets = logTargets(r, cwd);
  checkLogTargets(targets, cfg.logDir, cwd);
  const rotation = { size: cfg.logRotateSize, interval: cfg.logRotateInterval, keep: cfg.logRotateKeep };
  const errorIntervalMs = cfg.logWriteErrorInterval * 1000;
  const syslog = (t: Target) => t.kind === 'std' && (cfg.logSyslogPrefix === 'on' || (cfg.logSyslogPrefix === 'auto' && isJournalStream(t.fd)));
  const errorTarget = targets.error as Exclude<Target, { kind: 'off' }>;
  const errorSink = await Sink.open('error log', errorTarget, { rotation, errorIntervalMs, sync: true });
  // Workers write access lines themselves; the master only says where.
  const t = targets.access;
  const access: AccessPlan | undefined = t.kind === 'off' ? undefined : t.kind === 'file' ? { kind: 'file', files: new AccessFiles(t.path, rotation) } : { kind: 'stream', fd: t.fd };
  const pretty = cfg.logFormat === 'pretty' || (cfg.logFormat === 'auto' && errorTarget.kind === 'std' && process.stderr.isTTY === true);
  return {
    errorLog: new ErrorLog(errorSink, { pretty, syslogPrefix: syslog(errorTarget) }),
    access,
    accessPrefix: syslog(targets.access) ? '<6>' : '',
  };
}

/** The effective configuration for the start line: values only (the env file's variables never appear). */
function summary(r: Resolution): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(r.config) as SettingName[]) {
    if (r.sources[name].layer !== 'default') out[kebab(name)] = settingOf(name).type.show(r.config[name] as never);
  }
  return out;
}

/** `corral serve`: the master. */
export async function serve(cli: Partial<Record<SettingName, unknown>>): Promise<void> {
  const realEnv = { ...process.env };
  const cwd = process.cwd();
  const resolution = withTerminalAccessFormat(await resolveAppConfig({ cli, env: realEnv, cwd }), cwd);
  const cfg = resolution.config;
  const notifier = new Notifier(process.env);
  const logs = await openLogs(resolution, cwd);
  const log = createLogger({ level: cfg.logLevel, base: { pid: process.pid, role: 'master' } }, { write: (line: string) => logs.errorLog.line(line) });
  const listeners = await acquireListeners(cfg.bind.map(parseBind), { unixSocketMode: cfg.unixSocketMode });
  const control = await ControlServer.listen(controlSocketPath(process.pid)).catch((err: Error) => {
    log.warn(`control socket unavailable (${err.message}); \`corral reload --wait\` will not work`);
    return undefined;
  });
  log.info({ settings: summary(resolution), configFile: resolution.configFile }, 'effective configuration (non-default settings)');
  (await import('../master/pid1.js')).warnIfPid1(log);
  (await import('../config/memory.js')).warnIfMemoryTight(log, cfg);

  const baseEnv = workerEnv(process.env);
  for (const k of LISTEN_ENV) delete realEnv[k];

  const master = new Master({
    resolution,
    listeners,
    log,
    logs,
    notifier,
    control,
    baseEnv,
    cwd,
    onServing: enableOptimizer,
    version: corralVersion(),
    reloadConfig: async () => {
      return withTerminalAccessFormat(await resolveAppConfig({ cli, env: realEnv, cwd }), cwd);
    },
  });
  control?.handle('status', () => ({ ...master.metrics.status() }));
  const metricsAt = metricsAddress(cfg.metricsBind);
  let metricsServer: import('../metrics/server.js').MetricsServer | undefined;
  if (metricsAt) {
    try {
      metricsServer = await (await import('../metrics/server.js')).MetricsServer.listen(metricsAt, master.metrics);
    } catch (err) {
      control?.close();
      for (const l of listeners) l.cleanup();
      throw err;
    }
    log.info(`metrics on ${metricsAt.text}: /metrics, /livez, /readyz`);
  }
  try {
    await master.run();
  } finally {
    metricsServer?.close();
  }
}
