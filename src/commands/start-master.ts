/**
 * Starting a master, shared by `corral serve` and `corral dev`: bind (or take systemd's
 * sockets), check that a worker can be started with this configuration, open the control
 * socket and the metrics listener, say what runs, and run the master until it stops.
 */
import type { Resolution } from '../config/resolve.js';
import { kebab, settingOf, type SettingName } from '../config/settings.js';
import { warnIfMemoryTight } from '../config/memory.js';
import { ControlServer } from '../control/server.js';
import { controlSocketPath } from '../control/path.js';
import { acquireListeners, type Listener } from '../listeners/acquire.js';
import { parseBind } from '../listeners/bind-spec.js';
import { checkLogTargets, logTargets, type Target } from '../logging/destinations.js';
import { ErrorLog } from '../logging/error-log.js';
import { LogFiles } from '../logging/log-files.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { Sink } from '../logging/sink.js';
import { Master } from '../master/master.js';
import { warnIfPid1 } from '../master/pid1.js';
import { realRuntime, type MasterRuntime } from '../master/runtime.js';
import { accessContext, checkWorkerLaunch, type SpawnContext } from '../master/spawn.js';
import type { AccessPlan, MasterLogs } from '../master/master-logs.js';
import { metricsAddress, type MetricsServer } from '../metrics/server.js';
import { enableOptimizer } from '../startup-tiering.js';
import { isJournalStream } from '../systemd/journal.js';
import { Notifier } from '../systemd/notify.js';
import { workerEnv } from '../systemd/env.js';
import { corralVersion } from '../version.js';
import { markTls, TlsKeeper } from '../tls/keeper.js';
import { tlsFiles } from '../tls/pair.js';

export interface StartOptions {
  /** The configuration at start. */
  resolution: Resolution;
  /** Re-reads the configuration at a HUP. */
  load(): Promise<Resolution>;
  /** The log writers (see `openLogs`); the master closes them when it stops. */
  logs: MasterLogs;
  cwd: string;
  /** Starts a worker in place of the real spawn (dev: from a warm spare). */
  spawn?: MasterRuntime['spawn'];
  /**
   * Where the start's lines for the operator go, as text (dev: its terminal). Without it
   * they are logged at info level, with their fields.
   */
  print?(text: string): void;
  /** Called once, when the first generation serves. */
  onServing?(listeners: Listener[]): void;
  /** Called when a reload has finished, with its result. */
  onReload?(ok: boolean, detail: string): void;
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
  const errorSink = new Sink('error log', errorTarget, { rotation, errorIntervalMs });
  // Workers write access lines themselves; the master only says where.
  const t = targets.access;
  const access: AccessPlan | undefined = t.kind === 'off' ? undefined : t.kind === 'file' ? { kind: 'file', files: new LogFiles(t.path, rotation) } : { kind: 'stream', fd: t.fd };
  const pretty = cfg.logFormat === 'pretty' || (cfg.logFormat === 'auto' && errorTarget.kind === 'std' && process.stderr.isTTY === true);
  return {
    errorLog: new ErrorLog(errorSink, { pretty, syslogPrefix: syslog(errorTarget) }),
    access,
    accessPrefix: syslog(targets.access) ? '<6>' : '',
  };
}

/** The settings not left at their defaults, as shown: values only (the env file's variables never appear). */
function nonDefault(r: Resolution): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(r.config) as SettingName[]) {
    if (r.sources[name].layer !== 'default') out[kebab(name)] = settingOf(name).type.show(r.config[name] as never);
  }
  return out;
}

/** Runs a master until it stops; rejects with the error behind its exit code. */
export async function startMaster(o: StartOptions): Promise<void> {
  const cfg = o.resolution.config;
  const notifier = new Notifier(process.env);
  const log = createLogger({ level: cfg.logLevel, base: { pid: process.pid, role: 'master' } }, { write: (line: string) => o.logs.errorLog.line(line) });
  // Takes systemd's sockets and removes LISTEN_* from this process's environment, so the
  // workers' environment, copied from it next, never has them.
  // tls-bind's addresses come after bind's: markTls counts them from the end.
  const listeners = await acquireListeners([...cfg.bind, ...cfg.tlsBind].map(parseBind), { unixSocketMode: cfg.unixSocketMode });
  const baseEnv = workerEnv(process.env);
  const tls = new TlsKeeper(listeners, log, o.cwd);
  const launchable = (r: Resolution): Resolution => {
    checkLaunchable(r, listeners, baseEnv, accessContext(o.logs), o.cwd);
    // A pair that is not usable fails the start (78) or the reload (the old pair serves on).
    tls.configure(r.config);
    return r;
  };
  let control: ControlServer | undefined;
  try {
    markTls(listeners, tlsFiles(cfg, o.cwd) !== undefined, cfg.tlsBind.length);
    launchable(o.resolution);
    control = await ControlServer.listen(controlSocketPath(process.pid)).catch((err: Error) => {
      log.warn(`control socket unavailable (${err.message}); \`corral reload --wait\` will not work`);
      return undefined;
    });
  } catch (err) {
    for (const l of listeners) l.cleanup();
    throw err;
  }
  announceConfig(o, log);
  warnIfPid1(log);
  warnIfMemoryTight(log, cfg);

  const master = new Master({
    resolution: o.resolution,
    listeners,
    log,
    logs: o.logs,
    notifier,
    control,
    baseEnv,
    cwd: o.cwd,
    version: corralVersion(),
    runtime: o.spawn ? { ...realRuntime(o.logs), spawn: o.spawn } : undefined,
    // Checked before the master sees it: a configuration no worker could start with fails
    // the reload, and the old generation keeps serving.
    reloadConfig: async () => launchable(await o.load()),
    onServing: () => {
      enableOptimizer();
      o.onServing?.(listeners);
    },
    onReload: o.onReload,
    tls,
  });
  control?.handle('status', () => ({ ...master.metrics.status() }));
  const metrics = await listenMetrics(o, master, log).catch((err: unknown) => {
    control?.close();
    for (const l of listeners) l.cleanup();
    throw err;
  });
  try {
    await master.run();
  } finally {
    metrics?.close();
  }
}

/**
 * Throws E_WORKER_ENV when the kernel would refuse to start a worker of this configuration
 * (see checkWorkerLaunch), naming where an offending variable came from.
 */
export function checkLaunchable(r: Resolution, listeners: Listener[], baseEnv: NodeJS.ProcessEnv, access: SpawnContext['access'], cwd: string): void {
  const ctx: SpawnContext = { config: r.config, access, gen: 1, slot: 1, listeners, env: { ...r.envFileVars, ...baseEnv }, cwd };
  checkWorkerLaunch(ctx, (name) => (name in baseEnv ? 'the environment' : `env file ${r.envFile}`));
}

/** The configuration line: logged with its fields, or printed as text. */
function announceConfig(o: StartOptions, log: Logger): void {
  const settings = nonDefault(o.resolution);
  const configFile = o.resolution.configFile;
  if (!o.print) return log.info({ settings, configFile }, 'effective configuration (non-default settings)');
  const shown = Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(', ') || 'all defaults';
  o.print(`settings: ${shown}${configFile ? ` (config file ${configFile})` : ''}`);
}

async function listenMetrics(o: StartOptions, master: Master, log: Logger): Promise<MetricsServer | undefined> {
  const at = metricsAddress(o.resolution.config.metricsBind);
  if (!at) return undefined;
  const server = await (await import('../metrics/server.js')).MetricsServer.listen(at, master.metrics);
  const line = `metrics on ${at.text}: /metrics, /livez, /readyz`;
  if (o.print) o.print(line);
  else log.info(line);
  return server;
}
