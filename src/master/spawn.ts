import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../config/settings.js';
import type { WorkerSpec } from '../ipc/messages.js';
import type { Listener } from '../listeners/acquire.js';
import { WorkerHandle } from './worker-handle.js';

const WORKER_ENTRY = fileURLToPath(new URL('../worker/main.js', import.meta.url));

export interface SpawnContext {
  config: ResolvedConfig;
  /** Access lines go to the master (undefined: access log off). */
  access: { prefix: string } | undefined;
  gen: number;
  slot: number;
  listeners: Listener[];
  /** The environment the app sees: the real one over the env file's variables. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  now: number;
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
  return {
    gen: ctx.gen,
    slot: ctx.slot,
    app: c.app!,
    cwd: ctx.cwd,
    listeners: ctx.listeners.map((l, i) => ({ fd: 3 + i, label: l.label })),
    backlog: c.backlog,
    http: {
      keepAliveTimeoutMs: Math.round(c.keepAliveTimeout * 1000),
      headersTimeoutMs: Math.round(c.headersTimeout * 1000),
      requestTimeoutMs: Math.round(c.requestTimeout * 1000),
      maxHeaderSize: c.maxHeaderSize,
    },
    heartbeatMs: heartbeatMs(c.timeout),
    maxRequests: requestLimit(c),
    logLevel: c.logLevel,
    logs: {
      accessFd: ctx.access ? 4 + ctx.listeners.length : undefined,
      errorFd: 5 + ctx.listeners.length,
      accessFormat: c.accessLogFormat,
      accessPrefix: ctx.access?.prefix ?? '',
      slowMs: Math.round(c.slowRequestThreshold * 1000),
    },
  };
}

/**
 * Starts a worker process: stdout/stderr (piped to the master when captured), the
 * listeners as fds 3.., then the IPC channel, the access channel and the error channel.
 */
export function spawnWorker(ctx: SpawnContext, entry = WORKER_ENTRY): WorkerHandle {
  const spec = workerSpec(ctx);
  const out = ctx.config.captureOutput ? 'pipe' : 'inherit';
  const child = spawn(process.execPath, [entry], {
    cwd: ctx.cwd,
    env: { ...ctx.env, CORRAL_WORKER: JSON.stringify(spec) },
    stdio: ['ignore', out, out, ...ctx.listeners.map((l) => l.fd), 'ipc', ctx.access ? 'pipe' : 'ignore', 'pipe'],
    serialization: 'json',
  });
  return new WorkerHandle(child, ctx.gen, ctx.slot, ctx.now);
}
