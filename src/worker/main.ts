/**
 * A worker process: loads the app, listens on the sockets inherited from the master,
 * reports readiness and heartbeats, and drains on request. It never binds on its own.
 */
import { createServer, ServerResponse, type Server } from 'node:http';
import { Server as NetServer } from 'node:net';
import { lazyLogger } from '../logging/lazy-logger.js';
import { WORKER_EXIT, type MasterMessage, type WorkerMessage, type WorkerSpec } from '../ipc/messages.js';
import { AppLoadError, loadApp, parseAppRef, type LoadedApp } from './app-loader.js';
import { ConnectionTracker } from './connections.js';
import { wrapHandler } from './request-handler.js';
import { AccessBatch } from './access-log.js';
import { requestLogger } from './request-log.js';
import { attachClientErrors } from './client-errors.js';
import { CorralResponse } from './response.js';
import { AccessWriter } from './access-writer.js';
import { AppMetrics, EventLoopDelay, figures, RequestMetrics } from './metrics.js';
import { isAbsolute, resolve as resolvePath } from 'node:path';

const spec = JSON.parse(process.env.CORRAL_WORKER ?? 'null') as WorkerSpec | null;
if (!spec) {
  process.stderr.write('corral: this module is started by the corral master, not directly\n');
  process.exit(1);
}
delete process.env.CORRAL_WORKER;

const workerName = `${spec.gen}.${spec.slot}`;
// pino is loaded only if the worker has something to log: it serves sooner without it.
const log = lazyLogger({ level: spec.logLevel, base: { pid: process.pid, role: 'worker', worker: workerName } }, spec.logs.errorFd);
const tracker = new ConnectionTracker();
const access = spec.logs.access && new AccessWriter(spec.logs.access, { errorIntervalMs: spec.logs.writeErrorIntervalMs, report: (m) => log.error(m) });
const accessBatch = access && new AccessBatch(access);
const servers: Server[] = [];
const requestMetrics = new RequestMetrics(spec.metrics === true);
const loopDelay = new EventLoopDelay();
const appPath = parseAppRef(spec.app).path;
const appMetrics = spec.metrics ? new AppMetrics(isAbsolute(appPath) ? appPath : resolvePath(spec.cwd, appPath), (err) => log.debug({ err }, 'cannot read the app\'s prom-client registry')) : undefined;
let app: LoadedApp | undefined;
let stopping: 'drain' | 'fast' | undefined;
let heartbeat: NodeJS.Timeout | undefined;
let retireAsked = false;

function send(msg: WorkerMessage): void {
  if (process.connected) process.send!(msg);
}

// The master coordinates every stop. Ctrl-C reaches the whole process group, so a worker
// ignores INT and HUP; TERM and QUIT (systemd, or a human) start a graceful drain.
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
// USR1 is the master's (log reopen). Without a handler Node opens its inspector on USR1, which
// `systemctl kill -s USR1` sent to the whole unit would do to every worker.
process.on('SIGUSR1', () => {});
process.on('SIGTERM', () => void drain('SIGTERM'));
process.on('SIGQUIT', () => void drain('SIGQUIT'));
process.on('disconnect', masterGone);
process.on('message', (msg: MasterMessage) => {
  if (msg.t === 'drain') void drain('master');
  else if (msg.t === 'stop') fastStop();
  else if (msg.t === 'balance') tracker.balance(msg.limit);
  else if (msg.t === 'reopen') reopenAccessLog(msg.path);
});
process.on('uncaughtException', (err) => {
  log.error({ err }, 'uncaught exception in the app; asking for a replacement');
  retire('uncaught exception');
});
process.on('unhandledRejection', (reason) => {
  log.error({ err: reason }, 'unhandled promise rejection in the app');
});

/**
 * The master is gone (SIGKILL, the OOM killer): nobody supervises this worker any more, so it
 * stops accepting, finishes what is in flight within graceful-timeout, and exits. Its access
 * lines still reach the log: it writes them itself.
 */
function masterGone(): void {
  setTimeout(() => {
    log.warn(`the master is gone and requests are still in flight after graceful-timeout (${spec!.gracefulTimeoutMs / 1000} s); exiting`);
    accessBatch?.flush();
    process.exit(1);
  }, spec!.gracefulTimeoutMs);
  void drain('master gone');
}

/** Lines already batched go to the file they were meant for; the rest to the (re)opened one. */
function reopenAccessLog(path: string | undefined): void {
  accessBatch?.flush();
  access?.reopen(path);
}

function retire(reason: string): void {
  if (retireAsked) return;
  retireAsked = true;
  send({ t: 'retire', reason });
}

async function boot(): Promise<void> {
  try {
    app = await loadApp(spec!.app, spec!.cwd);
  } catch (err) {
    const message = err instanceof AppLoadError ? err.message : String((err as Error)?.message ?? err);
    send({ t: 'boot-failed', kind: 'load', message });
    log.fatal({ stack: err instanceof AppLoadError ? err.detail : (err as Error)?.stack }, message);
    process.exit(WORKER_EXIT.APP_LOAD);
  }
  try {
    await app.init?.();
  } catch (err) {
    const message = `app init failed: ${(err as Error)?.message ?? String(err)}`;
    send({ t: 'boot-failed', kind: 'init', message });
    log.fatal({ err }, message);
    process.exit(WORKER_EXIT.INIT);
  }
  if (stopping) return;
  const handler = wrapHandler(app.handler, tracker, log, {
    onCount: (served) => {
      if (spec!.maxRequests > 0 && served >= spec!.maxRequests) retire('max-requests');
    },
    logged: requestLogger({
      format: spec!.logs.accessFormat,
      prefix: spec!.logs.accessPrefix,
      slowMs: spec!.logs.slowMs,
      worker: workerName,
      log,
      metrics: requestMetrics,
    }, accessBatch),
  });
  try {
    await Promise.all(spec!.listeners.map((l) => listen(l.fd, handler)));
  } catch (err) {
    const message = `cannot listen: ${(err as Error).message}`;
    send({ t: 'boot-failed', kind: 'listen', message });
    log.fatal(message);
    process.exit(WORKER_EXIT.INIT);
  }
  heartbeat = setInterval(beat, spec!.heartbeatMs);
  beat();
  send({ t: 'ready' });
  reportConns();
  connsTimer = setInterval(reportConns, CONNS_REPORT_MS);
  connsTimer.unref();
  log.debug({ app: app.kind }, 'worker ready');
}

function listen(fd: number, handler: ReturnType<typeof wrapHandler>): Promise<void> {
  const server = createServer({
    // The class is ours (a ServerResponse subclass); its generic signature differs only in typing.
    ServerResponse: CorralResponse as unknown as typeof ServerResponse,
    maxHeaderSize: spec!.http.maxHeaderSize,
    requestTimeout: spec!.http.requestTimeoutMs,
    headersTimeout: spec!.http.headersTimeoutMs,
    keepAliveTimeout: spec!.http.keepAliveTimeoutMs,
    // Node checks headers/request timeouts only this often (30 s by default), so a 2 s
    // headers-timeout could otherwise let a slow client hold a connection for 32 s.
    connectionsCheckingInterval: Math.min(1000, spec!.http.headersTimeoutMs / 2),
  }, handler);
  server.keepAliveTimeout = spec!.http.keepAliveTimeoutMs;
  tracker.attach(server);
  accessBatch?.attach(server);
  attachClientErrors(server);
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The backlog must be an argument: listen() ignores options.backlog when given an fd.
    server.listen({ fd }, spec!.backlog, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** How often a changed count of kept connections is reported (for balancing). */
const CONNS_REPORT_MS = 50;
let connsTimer: NodeJS.Timeout | undefined;

function reportConns(): void {
  const kept = tracker.keptIfChanged();
  if (kept !== undefined) send({ t: 'conns', kept });
}

function beat(): void {
  send({ t: 'hb', rss: process.memoryUsage.rss(), inflight: tracker.inflightCount, busy: tracker.oldest(), m: figures(requestMetrics, loopDelay, appMetrics, performance.now()) });
}

async function drain(why: string): Promise<void> {
  if (stopping) return;
  stopping = 'drain';
  log.debug({ why }, 'draining');
  // Stop accepting without http.Server#close(), which also drops idle keep-alive
  // connections at once and races clients that are about to reuse them.
  stopAccepting();
  await tracker.drain();
  await finish(0);
}

function stopAccepting(): void {
  for (const s of servers) if (s.listening) NetServer.prototype.close.call(s);
}

function fastStop(): void {
  stopping = 'fast';
  stopAccepting();
  tracker.destroyAll();
  void finish(0);
}

async function finish(code: number): Promise<void> {
  clearInterval(heartbeat);
  clearInterval(connsTimer);
  try {
    await app?.close?.();
  } catch (err) {
    log.error({ err }, 'app close hook failed');
  }
  accessBatch?.flush();
  access?.close();
  await lastBeat();
  process.exit(code);
}

/**
 * A last heartbeat, so the master counts every request this worker answered since the
 * previous one; exit waits until it is written (bounded: the master may be gone).
 */
function lastBeat(): Promise<void> {
  if (!process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    try {
      process.send!({ t: 'hb', rss: process.memoryUsage.rss(), inflight: tracker.inflightCount, m: figures(requestMetrics, loopDelay, appMetrics, performance.now()) }, () => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

void boot();
