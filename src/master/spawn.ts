import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../config/settings.js';
import { workerFds } from '../ipc/fds.js';
import type { AccessDestination, WorkerSpec } from '../ipc/messages.js';
import type { Listener } from '../listeners/acquire.js';
import { attachWorkerLogs, type MasterLogs } from './master-logs.js';

const WORKER_ENTRY = fileURLToPath(new URL('../worker/main.js', import.meta.url));

export interface SpawnContext {
  config: ResolvedConfig;
  /**
   * Where the worker writes access lines (undefined: access log off): a file by name, or a
   * descriptor of the master's (its stdout), passed down as the access stream.
   */
  access: { dest: { kind: 'file'; path: string } | { kind: 'stream'; masterFd: number }; prefix: string } | undefined;
  gen: number;
  slot: number;
  listeners: Listener[];
  /** The environment the app sees: the real one over the env file's variables. */
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** How often a worker checks in: often enough to notice silence well before `timeout`. */
export function heartbeatMs(timeoutS: number): number {
  if (timeoutS === 0) return 1000;
  return Math.min(1000, Math.max(100, Math.floor((timeoutS * 1000) / 4)));
}

/** max-requests plus this worker's share of jitter, so workers do not all recycle at once. */
export function requestLimit(cfg: ResolvedConfig, random = Math.random): number {
  if (cfg.maxRequests === 0) return 0;
  return cfg.maxRequests + Math.floor(random() * (cfg.maxRequestsJitter + 1));
}

export function workerSpec(ctx: SpawnContext): WorkerSpec {
  const c = ctx.config;
  const fds = workerFds(ctx.listeners.length);
  const d = ctx.access?.dest;
  const access: AccessDestination | undefined = d && (d.kind === 'file' ? { kind: 'file', path: d.path } : { kind: 'stream', fd: fds.accessStream });
  return {
    gen: ctx.gen,
    slot: ctx.slot,
    app: c.app!,
    cwd: ctx.cwd,
    listeners: ctx.listeners.map((l, i) => ({ fd: fds.listeners[i]!, label: l.label })),
    backlog: c.backlog,
    http: {
      keepAliveTimeoutMs: Math.round(c.keepAliveTimeout * 1000),
      headersTimeoutMs: Math.round(c.headersTimeout * 1000),
      requestTimeoutMs: Math.round(c.requestTimeout * 1000),
      maxHeaderSize: c.maxHeaderSize,
    },
    heartbeatMs: heartbeatMs(c.timeout),
    metrics: c.metricsBind !== undefined && c.metricsBind !== 'off',
    gracefulTimeoutMs: Math.round(c.gracefulTimeout * 1000),
    maxRequests: requestLimit(c),
    logLevel: c.logLevel,
    logs: {
      access,
      writeErrorIntervalMs: Math.round(c.logWriteErrorInterval * 1000),
      errorFd: fds.errorLog,
      accessFormat: c.accessLogFormat,
      accessPrefix: ctx.access?.prefix ?? '',
      slowMs: Math.round(c.slowRequestThreshold * 1000),
    },
  };
}

/**
 * Starts a worker process with the descriptors of ipc/fds.ts: stdout/stderr (piped to the
 * master when captured), the listeners, the IPC channel, the master's access stream (when
 * access lines go to a stream) and the error-log channel.
 */
/** Starts the process only; the master's error log is connected by spawnWorker. */
export function startWorkerProcess(ctx: SpawnContext, entry = WORKER_ENTRY): ChildProcess {
  const spec = workerSpec(ctx);
  const out = ctx.config.captureOutput ? 'pipe' : 'inherit';
  const stream = ctx.access?.dest.kind === 'stream' ? ctx.access.dest.masterFd : undefined;
  const child = spawn(process.execPath, [entry], {
    cwd: ctx.cwd,
    env: { ...ctx.env, CORRAL_WORKER: JSON.stringify(spec) },
    stdio: ['ignore', out, out, ...ctx.listeners.map((l) => l.fd), 'ipc', stream ?? 'ignore', 'pipe'],
    serialization: 'json',
  });
  return child;
}

/** Starts a worker and connects its error-log channel and captured output to the master's error log. */
export function spawnWorker(ctx: SpawnContext, logs: MasterLogs): ChildProcess {
  const child = startWorkerProcess(ctx);
  attachWorkerLogs(child, `${ctx.gen}.${ctx.slot}`, logs, ctx.listeners.length);
  return child;
}
