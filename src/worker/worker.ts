/**
 * A worker: loads the app, listens on the sockets inherited from the master, reports
 * readiness and heartbeats, and drains on request. It never binds on its own. All of its
 * state lives in one Worker made from the spec the master sent; `runWorker` starts it.
 */
import type { Server } from 'node:http';
import type { Server as TlsServer } from 'node:tls';
import { Server as NetServer } from 'node:net';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { lazyLogger } from '../logging/lazy-logger.js';
import type { Logger } from '../logging/logger.js';
import { WORKER_EXIT } from '../exit-codes.js';
import type { DrainReason, MasterMessage, RetireReason, WorkerMessage, WorkerSpec } from '../ipc/messages.js';
import { loadApp, parseAppRef } from './app-loader.js';
import { AppLoadError, type LoadedApp } from './app-shape.js';
import { ConnectionTracker } from './connections.js';
import { RequestHandler } from './request-handler.js';
import { AccessBatch } from './access-log.js';
import { RequestLog } from './request-log.js';
import { ProxyTrust } from '../proxies/forwarded.js';
import { corralServer, secureContextOptions, serveUpgrades, type RequestPath, type TlsMaterial } from './server.js';
import { peerMatcher, ProxyRejections } from './proxy-header.js';
import { LongLived } from './long-lived.js';
import { LineWriter } from '../logging/line-writer.js';
import { AppMetrics, EventLoopDelay, figures, RequestMetrics } from './metrics.js';
import type { WorkerHooks } from './hooks.js';
import { flushCompileCache, type CacheOutcome } from './compile-cache.js';
import { warmUp, warmupBudgetMs, warmupServer, WarmupError } from './warmup.js';

/** How often a changed count of kept connections is reported (for balancing). */
const CONNS_REPORT_MS = 50;
/** How long the last heartbeat may take to be written at exit (the master may be gone). */
const LAST_BEAT_MS = 1000;
/** What an app's own stop (hapi's server.stop()) may take at a fast stop: the master kills after 2 s. */
const FAST_CLOSE_MS = 1000;
/** After a cut, how long the cut sockets' close events (and so their access lines) may take. */
const CUT_SETTLE_MS = 250;

/**
 * How long before graceful-timeout runs out a draining worker cuts what is still open itself,
 * so every cut request has its access line before the master's SIGKILL (the last resort, at
 * graceful-timeout): 10 % of graceful-timeout, at most 1 s.
 */
export function cutMarginMs(gracefulTimeoutMs: number): number {
  return Math.min(1000, gracefulTimeoutMs / 10);
}

export class Worker {
  private readonly log: Logger;
  private readonly tracker = new ConnectionTracker();
  private readonly longLived: LongLived;
  private readonly access: LineWriter | undefined;
  private readonly accessBatch: AccessBatch | undefined;
  private readonly servers: Server[] = [];
  /** The app's drain signal (its init context): aborted, with the DrainReason, as the drain starts. */
  private readonly draining = new AbortController();
  /** True while the drain signal's listeners run, and until their exceptions have surfaced. */
  private telling = false;
  private readonly requestMetrics: RequestMetrics;
  private readonly loopDelay = new EventLoopDelay();
  private readonly appMetrics: AppMetrics | undefined;
  /** Connections its PROXY protocol listeners closed before HTTP; set at boot when it has such a listener. */
  private proxyRejections: ProxyRejections | undefined;
  private app: LoadedApp | undefined;
  /** The config file's worker-side hooks, when it has any (loaded only then: hooks.ts). */
  private hooks: WorkerHooks | undefined;
  private stopping: 'drain' | 'fast' | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private connsTimer: NodeJS.Timeout | undefined;
  private retireAsked = false;
  /** True while it serves itself its warm-up requests (warmup-requests), before it listens. */
  private warmingUp = false;
  /** How many those were: not clients' requests, so not counted for max-requests. */
  private warmupServed = 0;
  private cutTimer: NodeJS.Timeout | undefined;
  /** When a graceful drain must be over (performance.now()), before the master's SIGKILL; set as it starts. */
  private drainBy: number | undefined;
  /** The master is gone: the exit says so (code 1). */
  private orphaned = false;
  /** The TLS pair the master sent last; `pairArrived` resolves with the first. */
  private pair: TlsMaterial | undefined;
  private pairArrived: ((m: TlsMaterial) => void) | undefined;

  constructor(private readonly spec: WorkerSpec, private readonly cache?: CacheOutcome) {
    const name = `${spec.gen}.${spec.slot}`;
    // pino is loaded only if the worker has something to log: it serves sooner without it.
    this.log = lazyLogger({ level: spec.logLevel, base: { pid: process.pid, role: 'worker', worker: name } }, spec.logs.errorFd);
    if (spec.logs.access) {
      this.access = new LineWriter(spec.logs.access, { what: 'access log', errorIntervalMs: spec.logs.writeErrorIntervalMs, report: (m, fields) => this.log.error(fields, m) });
      this.accessBatch = new AccessBatch(this.access);
    }
    this.longLived = new LongLived({ settings: spec.longLived, tracker: this.tracker });
    this.requestMetrics = new RequestMetrics(spec.metrics === true);
    if (spec.metrics) {
      const appPath = parseAppRef(spec.app).path;
      this.appMetrics = new AppMetrics(isAbsolute(appPath) ? appPath : resolvePath(spec.cwd, appPath), (err) => this.log.debug({ err }, 'cannot read the app\'s prom-client registry'));
    }
  }

  /** Installs the process handlers and boots: load, init, listen, then ready. */
  start(): void {
    // The master coordinates every stop. Ctrl-C reaches the whole process group, so a worker
    // ignores INT and HUP; TERM and QUIT (systemd, or a human) start a graceful drain.
    process.on('SIGINT', () => {});
    process.on('SIGHUP', () => {});
    // USR1 is the master's (log reopen). Without a handler Node opens its inspector on USR1, which
    // `systemctl kill -s USR1` sent to the whole unit would do to every worker.
    process.on('SIGUSR1', () => {});
    process.on('SIGTERM', () => void this.drain('shutdown', 'SIGTERM'));
    process.on('SIGQUIT', () => void this.drain('shutdown', 'SIGQUIT'));
    process.on('disconnect', () => this.masterGone());
    process.on('message', (msg: MasterMessage) => this.onMessage(msg));
    process.on('uncaughtException', (err) => {
      if (this.telling) {
        // EventTarget reports a listener's exception this way, on the next tick.
        this.log.error({ err }, 'the app\'s drain-signal listener threw; the drain goes on');
        return;
      }
      this.log.error({ err }, 'uncaught exception in the app; asking for a replacement');
      this.retire('uncaught exception');
    });
    process.on('unhandledRejection', (reason) => {
      this.log.error({ err: reason }, 'unhandled promise rejection in the app');
    });
    void this.boot();
  }

  private onMessage(msg: MasterMessage): void {
    if (msg.t === 'drain') void this.drain(msg.reason, 'master');
    else if (msg.t === 'stop') this.fastStop();
    else if (msg.t === 'balance') this.tracker.balance(msg.limit);
    else if (msg.t === 'reopen') this.reopenAccessLog(msg.path);
    else if (msg.t === 'tls') this.newPair({ cert: msg.cert, key: msg.key, ...(msg.ca !== undefined ? { ca: msg.ca } : {}) });
  }

  /** The pair to serve, from the master (which checked it); asked once at boot. */
  private askPair(): Promise<TlsMaterial> {
    return new Promise((resolve) => {
      this.pairArrived = resolve;
      this.send({ t: 'tls-wanted' });
    });
  }

  /**
   * A pair from the master: the first one starts the TLS servers; a later one is swapped in
   * place. New handshakes use it; open connections keep the session they have.
   */
  private newPair(m: TlsMaterial): void {
    this.pair = m;
    const arrived = this.pairArrived;
    this.pairArrived = undefined;
    if (arrived) return arrived(m);
    this.spec.listeners.forEach((l, i) => {
      const s = this.servers[i];
      if (!l.tls || !s) return;
      try {
        (s as unknown as TlsServer).setSecureContext(secureContextOptions(m));
      } catch (err) {
        this.log.error({ err }, `${l.label}: the new TLS certificate cannot be used; the previous one keeps serving`);
      }
    });
    this.log.debug('TLS certificate swapped');
  }

  private send(msg: WorkerMessage): void {
    if (process.connected) process.send!(msg);
  }

  /**
   * The master is gone (SIGKILL, the OOM killer): nobody supervises this worker any more, so it
   * stops accepting, finishes what is in flight within graceful-timeout, cuts what is left
   * (each with its access line: it writes them itself), and exits.
   */
  private masterGone(): void {
    this.orphaned = true;
    if (this.stopping === 'drain') return;
    void this.drain('shutdown', 'master gone');
  }

  /** Lines already batched go to the file they were meant for; the rest to the (re)opened one. */
  private reopenAccessLog(path: string | undefined): void {
    this.accessBatch?.flush();
    this.access?.reopen(path);
  }

  private retire(reason: RetireReason): void {
    if (this.retireAsked) return;
    this.retireAsked = true;
    this.send({ t: 'retire', reason });
  }

  private async boot(): Promise<void> {
    const { spec, log } = this;
    // Asked first, so the answer comes while the app loads.
    const pair = spec.listeners.some((l) => l.tls) ? this.askPair() : undefined;
    if (spec.hooks) await this.bootHook(spec.hooks);
    let app: LoadedApp;
    try {
      app = this.app = await loadApp(spec.app, spec.cwd);
      for (const w of app.warnings ?? []) log.warn(w);
    } catch (err) {
      this.loadFailed(err);
    }
    const trust = new ProxyTrust(spec.forwarded.allow);
    const requests = new RequestLog({
      format: spec.logs.accessFormat,
      prefix: spec.logs.accessPrefix,
      slowMs: spec.logs.slowMs,
      worker: `${spec.gen}.${spec.slot}`,
      log,
      metrics: this.requestMetrics,
      trust,
    }, this.accessBatch);
    const handler = new RequestHandler({
      app: app.handler, tracker: this.tracker, log, requests,
      onCount: (served) => {
        if (this.warmingUp) this.warmupServed = served;
        else if (spec.maxRequests > 0 && served - this.warmupServed >= spec.maxRequests) this.retire('max-requests');
      },
    });
    this.longLived.wire(requests, () => handler.countUpgrade());
    const path: RequestPath = {
      handler, tracker: this.tracker, requests, batch: this.accessBatch, longLived: this.longLived,
      dropUntrusted: spec.forwarded.dropUntrusted ? trust : undefined,
    };
    // The servers exist before init and listen after it: what the app attaches to them in init
    // (Socket.IO, @hono/node-ws, its own 'upgrade' listeners) serves their first connection.
    const rejections = new ProxyRejections(log);
    if (spec.listeners.some((l) => l.proxyProtocol)) this.proxyRejections = rejections;
    const allowed = spec.proxyProtocolFrom ? peerMatcher(spec.proxyProtocolFrom) : () => false;
    const tls = pair && (this.pair ?? (await pair));
    this.servers.push(...spec.listeners.map((l) => corralServer(spec.http, path, l.tls ? tls : undefined, l.proxyProtocol
      ? { listener: l.label, allowed, timeoutMs: spec.http.headersTimeoutMs, rejections }
      : undefined)));
    try {
      await app.init?.({ servers: [...this.servers], signal: this.draining.signal });
    } catch (err) {
      // The adapter found the app cannot be served after all (a hapi server started by the app).
      if (err instanceof AppLoadError) this.loadFailed(err);
      const message = `app init failed: ${(err as Error)?.message ?? String(err)}`;
      this.send({ t: 'boot-failed', kind: 'init', message });
      log.fatal({ err }, message);
      process.exit(WORKER_EXIT.INIT);
    }
    if (this.stopping) return;
    const upgrade = app.upgrade?.();
    if (upgrade) for (const s of this.servers) serveUpgrades(s, upgrade, log);
    await this.warmUp(requests);
    if (this.stopping) return;
    try {
      await Promise.all(spec.listeners.map((l, i) => this.listen(this.servers[i]!, l.fd)));
    } catch (err) {
      const message = `cannot listen: ${(err as Error).message}`;
      this.send({ t: 'boot-failed', kind: 'listen', message });
      log.fatal(message);
      process.exit(WORKER_EXIT.INIT);
    }
    // What this worker compiled is written before it says ready, for the workers started after
    // it (the next generation at a reload): a few milliseconds, once.
    if (this.cache?.on) flushCompileCache();
    this.heartbeat = setInterval(() => this.beat(), spec.heartbeatMs);
    this.beat();
    this.send({ t: 'ready' });
    this.reportConns();
    this.connsTimer = setInterval(() => this.reportConns(), CONNS_REPORT_MS);
    this.connsTimer.unref();
    log.debug({ app: app.kind, compile_cache: this.cache }, 'worker ready');
  }

  /**
   * The warm-up requests (warmup-requests), served through the first plain listener's server
   * before any listens; a failure fails the boot (E_WARMUP, exit 3). Their access lines and
   * counts are left out: the request log is muted meanwhile, and nothing else is served yet.
   */
  private async warmUp(requests: RequestLog): Promise<void> {
    const plan = this.spec.warmup;
    const target = plan && warmupServer(this.servers, this.spec.listeners);
    if (!plan || !target) return;
    requests.muted = true;
    this.warmingUp = true;
    const startedAt = performance.now();
    let served = 0;
    try {
      served = await warmUp(target.server, target.tls, { paths: plan.paths, count: plan.count, budgetMs: warmupBudgetMs(plan.bootTimeoutMs, startedAt) });
    } catch (err) {
      const message = err instanceof WarmupError ? err.message : `warm-up failed: ${(err as Error)?.message ?? String(err)}`;
      this.send({ t: 'boot-failed', kind: 'warmup', message });
      this.log.fatal(message);
      process.exit(WORKER_EXIT.INIT);
    } finally {
      requests.muted = false;
      this.warmingUp = false;
    }
    this.log.debug({ requests: served, ms: Math.round(performance.now() - startedAt) }, 'warm-up requests served');
  }

  /** Loads the worker-side hooks and runs workerBoot before the app loads; its failure is a failed boot. */
  private async bootHook(hs: NonNullable<WorkerSpec['hooks']>): Promise<void> {
    const { WorkerHooks, HookBootError } = await import('./hooks.js');
    this.hooks = new WorkerHooks(hs, { generation: this.spec.gen, slot: this.spec.slot }, this.log);
    try {
      await this.hooks.boot();
    } catch (err) {
      const message = err instanceof HookBootError ? err.message : `workerBoot hook failed: ${String((err as Error)?.message ?? err)}`;
      this.send({ t: 'boot-failed', kind: 'init', message });
      this.log.fatal(message);
      process.exit(WORKER_EXIT.INIT);
    }
  }

  /** The app cannot be loaded: the master hears why (with the error's code), and the worker exits 4. */
  private loadFailed(err: unknown): never {
    const message = err instanceof AppLoadError ? err.message : String((err as Error)?.message ?? err);
    const code = err instanceof AppLoadError ? err.code : 'E_APP_LOAD';
    this.send({ t: 'boot-failed', kind: 'load', message, code });
    this.log.fatal({ stack: err instanceof AppLoadError ? err.detail : (err as Error)?.stack }, message);
    process.exit(WORKER_EXIT.APP_LOAD);
  }

  private listen(server: Server, fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      // The backlog must be an argument: listen() ignores options.backlog when given an fd.
      server.listen({ fd }, this.spec.backlog, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private reportConns(): void {
    const kept = this.tracker.keptIfChanged();
    if (kept !== undefined) this.send({ t: 'conns', kept });
  }

  private heartbeatMessage(): WorkerMessage {
    const m = figures(this.requestMetrics, this.loopDelay, this.appMetrics, this.longLived.figures(), performance.now());
    if (this.proxyRejections && this.proxyRejections.count > 0) m.proxyRejected = { ...this.proxyRejections.total };
    return { t: 'hb', rss: process.memoryUsage.rss(), inflight: this.tracker.inflightCount, busy: this.tracker.oldest(), m };
  }

  private beat(): void {
    this.send(this.heartbeatMessage());
  }

  /** `reason`: what the app hears (the drain signal's reason); `why`: what started it, for the log. */
  private async drain(reason: DrainReason, why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = 'drain';
    this.log.debug({ why, reason }, 'draining');
    // The app hears it first, so its own goodbyes (io.close(), closing its WebSockets with
    // 1012, ending its event streams) go out while everything is still open.
    this.tellApp(reason);
    // The workerStopping hook runs beside the drain; the exit waits for it (bounded by
    // hook-timeout, and by the cut at graceful-timeout).
    const hookDone = this.hooks?.stopping(reason);
    // WebSockets and event streams the app leaves open are ended by corral, spread over close-spread.
    this.longLived.drain(reason);
    // Stop accepting without http.Server#close(), which also drops idle keep-alive
    // connections at once and races clients that are about to reuse them.
    this.stopAccepting();
    const { gracefulTimeoutMs } = this.spec;
    this.drainBy = performance.now() + gracefulTimeoutMs - cutMarginMs(gracefulTimeoutMs);
    this.cutTimer = setTimeout(() => void this.cutAtDeadline(), gracefulTimeoutMs - cutMarginMs(gracefulTimeoutMs));
    await Promise.all([this.tracker.drain(), hookDone]);
    clearTimeout(this.cutTimer);
    await this.finish(this.orphaned ? 1 : 0);
  }

  /**
   * graceful-timeout is about to run out with requests or long-lived connections still open:
   * the worker ends them itself, so each gets its access line (the status the client got, or
   * 499; a WebSocket's 1006), then exits before the master would have to kill it.
   */
  private async cutAtDeadline(): Promise<void> {
    const requests = this.tracker.inflightCount;
    const longLived = this.longLived.size;
    const after = `${this.spec.gracefulTimeoutMs / 1000} s`;
    const what = `${requests} request(s) and ${longLived} long-lived connection(s)`;
    this.log.warn({ requests, long_lived: longLived }, this.orphaned
      ? `the master is gone and ${what} are still open as graceful-timeout (${after}) runs out; cutting them and exiting`
      : `${what} still open as graceful-timeout (${after}) runs out; cutting them`);
    await this.cutAll();
    await this.finish(this.orphaned ? 1 : 0);
  }

  /** Cuts every connection now and waits (bounded) until their access lines are written. */
  private async cutAll(): Promise<void> {
    this.longLived.cut();
    this.tracker.destroyAll();
    const until = performance.now() + CUT_SETTLE_MS;
    while (this.tracker.connectionCount > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
    this.accessBatch?.flush();
  }

  /**
   * Aborts the drain signal. A listener that throws does not stop the drain: EventTarget
   * reports it as an uncaught exception on the next tick, which is logged as the listener's.
   */
  private tellApp(reason: DrainReason): void {
    this.telling = true;
    try {
      this.draining.abort(reason);
    } catch (err) {
      this.log.error({ err }, 'the app\'s drain-signal listener threw; the drain goes on');
    }
    process.nextTick(() => {
      this.telling = false;
    });
  }

  private stopAccepting(): void {
    for (const s of this.servers) if (s.listening) NetServer.prototype.close.call(s);
  }

  private fastStop(): void {
    this.stopping = 'fast';
    clearTimeout(this.cutTimer);
    this.stopAccepting();
    void this.cutAll().then(() => this.finish(0));
  }

  private async finish(code: number): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.connsTimer);
    try {
      // What is left of graceful-timeout (a fast stop leaves about a second before the kill).
      await this.app?.close?.(this.drainBy === undefined ? FAST_CLOSE_MS : Math.max(0, this.drainBy - performance.now()));
    } catch (err) {
      this.log.error({ err }, 'app close hook failed');
    }
    this.accessBatch?.flush();
    this.access?.close();
    await this.lastBeat();
    process.exit(code);
  }

  /**
   * A last heartbeat, so the master counts every request this worker answered since the
   * previous one, and every WebSocket and stream the drain closed (its open counts are then
   * final); exit waits until it is written (bounded: the master may be gone).
   */
  private lastBeat(): Promise<void> {
    if (!process.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, LAST_BEAT_MS);
      try {
        process.send!(this.heartbeatMessage(), () => {
          clearTimeout(timer);
          resolve();
        });
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

/** Starts this process's worker from the master's spec. */
export function runWorker(spec: WorkerSpec, cache?: CacheOutcome): Worker {
  const w = new Worker(spec, cache);
  w.start();
  return w;
}
