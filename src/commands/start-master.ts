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
import { createLogger, type Logger } from '../logging/logger.js';
import { Master } from '../master/master.js';
import { warnIfPid1 } from '../master/pid1.js';
import { realRuntime, type MasterRuntime } from '../master/runtime.js';
import { accessContext, spawnWorker } from '../master/spawn.js';
import { metricsAddress, type MetricsServer } from '../metrics/server.js';
import { enableOptimizer } from '../startup-tiering.js';
import { Notifier } from '../systemd/notify.js';
import { workerEnv } from '../systemd/env.js';
import { corralVersion } from '../version.js';
import type { MasterLogs } from '../master/master-logs.js';
import type { EarlyWorkers } from '../master/early-workers.js';
import { markTls, TlsKeeper } from '../tls/keeper.js';
import { tlsFiles } from '../tls/pair.js';
import { checkLaunchable } from './early-start.js';

export { checkLaunchable, openLogs } from './early-start.js';

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
  /** The listeners, already acquired, and the first generation's workers, already started (early-start.ts). */
  early?: { listeners: Listener[]; workers: EarlyWorkers | undefined };
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
  const listeners = o.early?.listeners ?? await acquireListeners([...cfg.bind, ...cfg.tlsBind].map(parseBind), { unixSocketMode: cfg.unixSocketMode });
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
    runtime: runtimeOf(o),
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

/** The real runtime, whose spawn is dev's (from a warm spare) or takes over the workers started early. */
function runtimeOf(o: StartOptions): MasterRuntime | undefined {
  const early = o.early?.workers;
  if (o.spawn) return { ...realRuntime(o.logs), spawn: o.spawn };
  if (early) return { ...realRuntime(o.logs), spawn: (ctx) => early.take(ctx, o.logs) ?? spawnWorker(ctx, o.logs) };
  return undefined;
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
