import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../config/settings.js';
import { argMax, execBytes, MAX_ARG_STRLEN, sizeText, stringBytes } from '../config/exec-limits.js';
import { CorralError } from '../errors.js';
import { workerFds, workerStdio } from '../ipc/fds.js';
import { splitNodeOptions } from '../config/node-options.js';
import type { AccessDestination, WorkerHooksSpec, WorkerSpec } from '../ipc/messages.js';
import { proxyProtocolListeners, type Listener } from '../listeners/acquire.js';
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
  /** The worker-side hooks of the config file, when it has any. */
  hooks?: WorkerHooksSpec | undefined;
}

/** Where a worker writes access lines, as the master's log plan says: the current file, or the master's stream. */
export function accessContext(logs: MasterLogs): SpawnContext['access'] {
  const plan = logs.access;
  if (!plan) return undefined;
  const dest = plan.kind === 'file' ? { kind: 'file' as const, path: plan.files.current } : { kind: 'stream' as const, masterFd: plan.fd };
  return { dest, prefix: logs.accessPrefix };
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

/**
 * The directory of the workers' module compile cache (compile-cache): `off` none; `auto` one
 * in the directory systemd made for the service (CacheDirectory=, StateDirectory=,
 * RuntimeDirectory=: the first set; with several, the first of the list), so it lasts across
 * reloads and is the app's own, else one per user in the temp directory (the worker refuses
 * it unless it is its user's own and closed to others: worker/compile-cache.ts).
 */
export function compileCacheDir(setting: string, env: NodeJS.ProcessEnv, cwd: string, uid = process.getuid?.() ?? 0): string | undefined {
  if (setting === 'off') return undefined;
  if (setting !== 'auto') return resolve(cwd, setting);
  for (const name of ['CACHE_DIRECTORY', 'STATE_DIRECTORY', 'RUNTIME_DIRECTORY']) {
    const dir = env[name]?.split(':')[0];
    if (dir) return join(dir, 'compile-cache');
  }
  return join(tmpdir(), `corral-compile-cache-${uid}`);
}

function compileCacheField(dir: string | undefined): Pick<WorkerSpec, 'compileCache'> {
  return dir === undefined ? {} : { compileCache: dir };
}

export function workerSpec(ctx: SpawnContext): WorkerSpec {
  const c = ctx.config;
  const fds = workerFds(ctx.listeners.length);
  const proxied = proxyProtocolListeners(c.proxyProtocol, ctx.listeners);
  const d = ctx.access?.dest;
  const access: AccessDestination | undefined = d && (d.kind === 'file' ? { kind: 'file', path: d.path } : { kind: 'stream', fd: fds.accessStream });
  return {
    gen: ctx.gen,
    slot: ctx.slot,
    app: c.app!,
    cwd: ctx.cwd,
    listeners: ctx.listeners.map((l, i) => ({ fd: fds.listeners[i]!, label: l.label, ...(proxied[i] ? { proxyProtocol: true } : {}), ...(l.tls ? { tls: true } : {}) })),
    ...(proxied.includes(true) ? { proxyProtocolFrom: c.proxyProtocolFrom } : {}),
    backlog: c.backlog,
    http: {
      keepAliveTimeoutMs: Math.round(c.keepAliveTimeout * 1000),
      headersTimeoutMs: Math.round(c.headersTimeout * 1000),
      requestTimeoutMs: Math.round(c.requestTimeout * 1000),
      maxHeaderSize: c.maxHeaderSize,
    },
    forwarded: { allow: c.forwardedAllowIps, dropUntrusted: c.forwardedHeaders === 'drop-untrusted' },
    heartbeatMs: heartbeatMs(c.timeout),
    metrics: c.metricsBind !== undefined && c.metricsBind !== 'off',
    gracefulTimeoutMs: Math.round(c.gracefulTimeout * 1000),
    longLived: {
      spreadMs: Math.round(Math.min(c.closeSpread, c.gracefulTimeout / 2) * 1000),
      closeReload: c.websocketCloseReload,
      closeStop: c.websocketCloseStop,
    },
    ...compileCacheField(compileCacheDir(c.compileCache, ctx.env, ctx.cwd)),
    ...(c.warmupRequests.length > 0 ? { warmup: { paths: c.warmupRequests, count: c.warmupCount, bootTimeoutMs: Math.round(c.bootTimeout * 1000) } } : {}),
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
    ...(ctx.hooks ? { hooks: ctx.hooks } : {}),
  };
}

/**
 * The program, arguments and environment a worker is started with: worker-node-options go
 * before the entry, so what they load (an --import) runs before any of corral's worker code.
 */
function workerCommand(ctx: SpawnContext, entry: string): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  const args = [...splitNodeOptions(ctx.config.workerNodeOptions), entry];
  return { file: process.execPath, args, env: { ...ctx.env, CORRAL_WORKER: JSON.stringify(workerSpec(ctx)) } };
}

/**
 * Starts the process only, with the descriptors of ipc/fds.ts (stdout and stderr piped to
 * the master when captured); the master's error log is connected by spawnWorker.
 */
export function startWorkerProcess(ctx: SpawnContext, entry = WORKER_ENTRY): ChildProcess {
  const cmd = workerCommand(ctx, entry);
  const stream = ctx.access?.dest.kind === 'stream' ? ctx.access.dest.masterFd : undefined;
  return spawn(cmd.file, cmd.args, {
    cwd: ctx.cwd,
    env: cmd.env,
    stdio: workerStdio(ctx.listeners.map((l) => l.fd), stream, ctx.config.captureOutput ? 'pipe' : 'inherit'),
    serialization: 'json',
  });
}

/**
 * Room left for what changes from worker to worker in the spec: the generation and slot
 * numbers, the jittered request limit, the access file's rotated name.
 */
const PER_WORKER_MARGIN = 4096;

/**
 * Throws a configuration error when the kernel would refuse to start a worker with this
 * context (see config/exec-limits.ts), before any is spawned: at start the master then
 * exits 78, at a reload the reload fails and the old generation keeps serving. `origin`
 * names where a variable came from (the env file, the environment).
 */
export function checkWorkerLaunch(ctx: SpawnContext, origin: (name: string) => string): void {
  const cmd = workerCommand(ctx, WORKER_ENTRY);
  const vars = Object.entries(cmd.env).filter((e): e is [string, string] => e[1] !== undefined);
  const named = (k: string) => (k === 'CORRAL_WORKER' ? `the workers' start-up settings (CORRAL_WORKER, with ${ctx.listeners.length} listener(s))` : `${k} (from ${origin(k)})`);
  for (const [k, v] of vars) {
    if (k.includes('\0') || v.includes('\0')) {
      throw new CorralError('E_WORKER_ENV', `${named(k)} contains a NUL byte, which no environment variable can hold (a process's environment strings end at NUL); remove it`);
    }
    const size = stringBytes(`${k}=${v}`);
    if (size + (k === 'CORRAL_WORKER' ? PER_WORKER_MARGIN : 0) > MAX_ARG_STRLEN) {
      throw new CorralError('E_WORKER_ENV', `${named(k)} is ${sizeText(size)}, over the kernel's limit of ${sizeText(MAX_ARG_STRLEN)} for one variable (MAX_ARG_STRLEN, execve(2)); no worker could be started: ${k === 'CORRAL_WORKER' ? 'use fewer binds' : 'keep large values in a file and pass its path'}`);
    }
  }
  const total = execBytes(cmd.file, cmd.args, cmd.env);
  const limit = argMax();
  if (total + PER_WORKER_MARGIN > limit) {
    const largest = vars.sort((a, b) => b[1].length - a[1].length).slice(0, 3);
    const list = largest.map(([k, v]) => `${k === 'CORRAL_WORKER' ? named(k) : k} ${sizeText(stringBytes(v))}`).join(', ');
    const from = [...new Set(largest.filter(([k]) => k !== 'CORRAL_WORKER').map(([k]) => origin(k)))];
    throw new CorralError('E_WORKER_ENV', `the workers' environment and arguments come to ${sizeText(total)}, over the kernel's limit of ${sizeText(limit)} (a quarter of the stack limit, \`ulimit -s\`; execve(2) E2BIG); no worker could be started: make the largest smaller: ${list}${from.length ? ` (from ${from.join(' and ')})` : ''}`);
  }
}

/** Starts a worker and connects its error-log channel and captured output to the master's error log. */
export function spawnWorker(ctx: SpawnContext, logs: MasterLogs): ChildProcess {
  const child = startWorkerProcess(ctx);
  attachWorkerLogs(child, `${ctx.gen}.${ctx.slot}`, logs, ctx.listeners.length);
  return child;
}
