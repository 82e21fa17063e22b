/**
 * What `corral serve` does before it loads the master's own code: open the logs, take the
 * listeners, check that a worker can be started, and start the first generation's workers
 * (master/early-workers.ts), so their Node start overlaps the loading of the supervisor.
 * Only light modules are imported here; start-master.ts is imported after.
 */
import type { Resolution } from '../config/resolve.js';
import { acquireListeners, type Listener } from '../listeners/acquire.js';
import { parseBind } from '../listeners/bind-spec.js';
import { checkLogTargets, logTargets, type Target } from '../logging/destinations.js';
import { ErrorLog } from '../logging/error-log.js';
import { LogFiles } from '../logging/log-files.js';
import { Sink } from '../logging/sink.js';
import { EarlyWorkers } from '../master/early-workers.js';
import { workerHooksSpec } from '../master/hooks.js';
import { holdSignals } from '../master/signals.js';
import type { AccessPlan, MasterLogs } from '../master/master-logs.js';
import { accessContext, checkWorkerLaunch, type SpawnContext } from '../master/spawn.js';
import { isJournalStream } from '../systemd/journal.js';
import { workerEnv } from '../systemd/env.js';

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

/**
 * Throws E_WORKER_ENV when the kernel would refuse to start a worker of this configuration
 * (see checkWorkerLaunch), naming where an offending variable came from.
 */
export function checkLaunchable(r: Resolution, listeners: Listener[], baseEnv: NodeJS.ProcessEnv, access: SpawnContext['access'], cwd: string): void {
  const ctx: SpawnContext = { config: r.config, access, gen: 1, slot: 1, listeners, env: { ...r.envFileVars, ...baseEnv }, cwd };
  checkWorkerLaunch(ctx, (name) => (name in baseEnv ? 'the environment' : `env file ${r.envFile}`));
}

/**
 * Takes the listeners and starts the first generation's workers, started exactly as the
 * master would start them (worker hooks included), so that it takes them over.
 */
export async function startEarly(r: Resolution, logs: MasterLogs, cwd: string): Promise<{ listeners: Listener[]; workers: EarlyWorkers | undefined }> {
  const cfg = r.config;
  // Removes LISTEN_* from this process's environment, so the workers' copy never has them.
  const listeners = await acquireListeners([...cfg.bind, ...cfg.tlsBind].map(parseBind), { unixSocketMode: cfg.unixSocketMode });
  // With TLS the master checks the certificate first; a masterStarted hook runs before the
  // first worker starts (docs/hooks.md). Either way the master starts them itself.
  if (cfg.tlsCert !== undefined || cfg.tlsKey !== undefined || r.hooks.masterStarted !== undefined) return { listeners, workers: undefined };
  try {
    const baseEnv = workerEnv(process.env);
    const access = accessContext(logs);
    checkLaunchable(r, listeners, baseEnv, access, cwd);
    // From here a worker may answer before the master's loop listens for signals.
    holdSignals();
    const workers = new EarlyWorkers({ config: cfg, access, listeners, env: { ...r.envFileVars, ...baseEnv }, cwd, hooks: workerHooksSpec(r) }, cfg.workers.min);
    return { listeners, workers };
  } catch (err) {
    for (const l of listeners) l.cleanup();
    throw err;
  }
}
