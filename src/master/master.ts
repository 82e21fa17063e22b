import type { Resolution } from '../config/resolve.js';
import { CorralError, isAppLoadCode } from '../errors.js';
import { isWorkerMessage, type MasterMessage, type RetireReason } from '../ipc/messages.js';
import type { Listener } from '../listeners/acquire.js';
import type { Logger } from '../logging/logger.js';
import type { ControlServer } from '../control/server.js';
import { Generation, HEALTHY_RUN_MS } from './generation.js';
import type { Notifier } from '../systemd/notify.js';
import { accessContext } from './spawn.js';
import { realRuntime, type MasterRuntime } from './runtime.js';
import { HANDLED_SIGNALS, releaseHeldSignals, type Sig } from './signals.js';
import type { MasterPhase } from './states.js';
import { statusLine } from './status-line.js';
import { exitOutcome, retireText, stopText } from './exit-cause.js';
import { WorkerHandle } from './worker-handle.js';
import type { MasterLogs } from './master-logs.js';
import { Balancer } from './balance.js';
import { stopBudgetWarning } from './stop-budget.js';
import { restartOnlyWarnings } from './restart-only.js';
import { MasterMetrics, type MasterView } from '../metrics/master-metrics.js';
import { AdapterRelay, isAdapterMessage } from './relay.js';
import { realProbe, Scaler, type ScalingProbe } from './scaler.js';
import { showRange } from '../config/worker-range.js';
import type { TlsKeeper } from '../tls/keeper.js';
import { MasterHooks, workerExitedEvent, workerHooksSpec, type ReloadOutcome } from './hooks.js';

function firstLine(s: string): string {
  return s.split('\n')[0]!;
}

/** Failed boots of one slot at start before the master gives up with exit 3. */
const BOOT_ATTEMPTS = 3;
/** The loop never sleeps longer than this, so the watchdog and checks keep a steady pace. */
const MAX_SLEEP_MS = 1000;

export interface MasterDeps {
  resolution: Resolution;
  listeners: Listener[];
  log: Logger;
  logs: MasterLogs;
  notifier: Notifier;
  control: ControlServer | undefined;
  /** Re-reads the config file and env file (HUP). */
  reloadConfig(): Promise<Resolution>;
  /** The real environment at start, without what only the master may see. */
  baseEnv: NodeJS.ProcessEnv;
  cwd: string;
  /** Called once, when the first generation serves (the start-up is over). */
  onServing?(): void;
  /** corral's version, for corral_build_info. */
  version?: string;
  /** Called when a reload has finished, with its result (dev: the terminal says so). */
  onReload?: (ok: boolean, detail: string) => void;
  /** Defaults to the real processes, clock, signals and timers (dev swaps in warm spares). */
  runtime?: MasterRuntime;
  /** The certificate served on TLS listeners, swapped in place (absent: no TLS). */
  tls?: TlsKeeper;
  /** What a range of workers scales on besides the heartbeats; defaults to the real accept queues, cgroup and RSS. */
  scalingProbe?: ScalingProbe;
}

/**
 * The arbiter. Signal handlers and child events only record what happened and wake the
 * loop; `tick` does all the work in order and then sleeps until the nearest deadline.
 * Clocks are monotonic (performance.now), so a wall-clock jump changes nothing.
 */
export class Master {
  private phase: MasterPhase = 'starting';
  private readonly signals: Sig[] = [];
  private readonly workers = new Set<WorkerHandle>();
  private current: Generation | undefined;
  private pending: Generation | undefined;
  private nextGenId = 1;
  private reloadSeq = 0;
  private reloadQueued = false;
  private configLoading = false;
  private lastReload = 'none yet';
  private failure: CorralError | undefined;
  private timer: unknown;
  private immediate = false;
  private lastWatchdog = 0;
  private done: ((err?: CorralError) => void) | undefined;
  private readonly listenerFns = new Map<Sig, () => void>();
  /** Workers whose channels (access lines, error log, output) are still open. */
  private openChannels = 0;
  private readonly balancer = new Balancer();
  /** Passes @socket.io/cluster-adapter's messages between workers (relay.ts). */
  private readonly relay: AdapterRelay;
  private readonly rt: MasterRuntime;
  /** The stop under way: the signal that began it, when, and (during a shutdown delay) when the drain starts. */
  private stop: { sig: Sig; since: number; drainAt: number | undefined } | undefined;
  private lastTickAt: number;
  /** Told of starts, exits, reloads and heartbeats; asks `view` when /metrics or status is asked. */
  readonly metrics: MasterMetrics;
  /** The config file's lifecycle hooks, called off the loop (hooks.ts). */
  private readonly hooks: MasterHooks;
  private exiting = false;
  /** Grows and shrinks a range of workers with the load, and applies TTIN/TTOU (scaler.ts). */
  private readonly scaler: Scaler;

  constructor(private readonly d: MasterDeps) {
    this.rt = d.runtime ?? realRuntime(d.logs);
    this.relay = new AdapterRelay((line) => this.d.log.warn(line), () => this.rt.now());
    this.lastTickAt = this.rt.now();
    this.metrics = new MasterMetrics(() => this.view(), { version: d.version ?? 'unknown', node: process.version });
    this.metrics.masterStarted(this.lastTickAt);
    this.hooks = new MasterHooks(d.log, this.rt, d.resolution);
    this.scaler = new Scaler(d.scalingProbe ?? realProbe(() => this.metrics.listenQueues()), d.log, (w) => this.metrics.figures.figuresOf(w));
  }

  /** Runs until the master stops; rejects with the error behind exit codes 3 and 4. */
  run(): Promise<void> {
    for (const sig of HANDLED_SIGNALS) {
      const fn = () => this.onSignal(sig);
      this.listenerFns.set(sig, fn);
      this.rt.onSignal(sig, fn);
    }
    this.d.control?.onWatch(() => this.reloadSeq);
    this.d.tls?.start((msg) => this.broadcast(msg));
    const labels = this.d.listeners.map((l) => l.label).join(', ');
    this.d.log.info({ listeners: labels, workers: showRange(this.d.resolution.config.workers), app: this.d.resolution.config.app }, `corral master ${process.pid} starting: ${labels}`);
    this.checkStopBudget(this.d.resolution);
    this.startFirstGeneration();
    // What arrived while the first workers started before this loop existed (early-start.ts),
    // handled once those workers are the master's: a stop drains them (they may be serving
    // already), rather than leaving them to be killed with requests in flight.
    for (const sig of releaseHeldSignals()) this.onSignal(sig);
    return new Promise((resolve, reject) => {
      this.done = (err) => (err ? reject(err) : resolve());
      this.wake();
    });
  }

  /**
   * The first generation starts once the masterStarted hook settles (at most hook-timeout);
   * the loop runs meanwhile, so a signal is handled as usual (a stop then starts no worker).
   */
  private startFirstGeneration(): void {
    const start = () => {
      if (this.phase !== 'starting') return;
      this.pending = new Generation(this.nextGenId++, this.d.resolution);
      // Spawned now, not at the next turn: the workers started early are taken at once.
      this.maintain(this.rt.now());
      this.wake();
    };
    if (!this.hooks.has('masterStarted')) return start();
    void this.hooks.masterStarted(this.d.resolution, this.d.listeners).then(start);
  }

  private onSignal(sig: Sig): void {
    this.signals.push(sig);
    this.wake();
  }

  private wake(): void {
    if (this.immediate) return;
    this.immediate = true;
    this.rt.setImmediate(() => {
      this.immediate = false;
      this.tick();
    });
  }

  private tick(): void {
    this.rt.clearTimeout(this.timer);
    const now = this.rt.now();
    this.lastTickAt = now;
    for (const sig of this.signals.splice(0)) this.handleSignal(sig, now);
    if (this.stop?.drainAt !== undefined && now >= this.stop.drainAt) this.startDrain(now, `${this.stop.sig}: shutdown delay over`);
    for (const w of this.workers) if (!w.alive) this.handleExit(w, now);
    this.checkWorkers(now);
    this.progressPending(now);
    this.autoscale(now);
    this.maintain(now);
    this.rotateAccess(now);
    if (this.phase === 'running' && this.current?.config.keepAliveBalance) {
      const gen = this.current;
      this.balancer.run([...this.workers].filter((w) => w.generation === gen && w.serving), now);
    }
    // Finish only once every worker's channels are read to the end: no log line is left behind.
    if (this.phase === 'stopping' && this.aliveCount() === 0 && this.openChannels === 0) return this.finish();
    this.d.notifier.status(this.status());
    this.pingWatchdog(now);
    this.timer = this.rt.setTimeout(() => this.tick(), Math.max(1, this.nextDeadline(now) - now));
  }

  // ---- signals -------------------------------------------------------------------------

  private handleSignal(sig: Sig, now: number): void {
    switch (sig) {
      case 'SIGHUP': return this.handleHup();
      case 'SIGQUIT':
      case 'SIGTERM': return this.handleQuit(sig, now);
      case 'SIGINT': return this.handleInt(now);
      case 'SIGUSR1': return this.handleUsr1();
      case 'SIGTTIN': return this.handleTtinTtou(1, now);
      case 'SIGTTOU': return this.handleTtinTtou(-1, now);
    }
  }

  private handleHup(): void {
    if (this.phase === 'stopping') return void this.d.log.info('HUP ignored: stopping');
    if (this.phase === 'starting' || this.pending || this.configLoading) {
      this.reloadQueued = true;
      this.d.log.info('HUP: a reload is already under way; another follows it');
      return;
    }
    this.startReload();
  }

  // ---- stopping: shutdown delay, drain, fast stop ------------------------------------------

  /**
   * TERM/QUIT. With a shutdown delay (and a generation serving), the master turns not ready
   * at once (phase `stopping`: /readyz answers 503, STOPPING=1) but leaves the workers
   * accepting and serving until the delay is over, so that a load balancer or an endpoints
   * controller stops sending first; then it drains. A second TERM/QUIT during the delay
   * starts the drain at once; during the drain it escalates to a fast stop, as INT does.
   */
  private handleQuit(sig: Sig, now: number): void {
    if (this.stop?.drainAt !== undefined) return this.startDrain(now, `${sig} during the shutdown delay`);
    if (this.phase === 'stopping') return this.goFast(now, `${sig} during drain`);
    this.phase = 'stopping';
    this.d.notifier.stopping();
    const delay = this.current?.config.shutdownDelay ?? 0;
    this.stop = { sig, since: now, drainAt: undefined };
    if (delay === 0 || !this.current) return this.startDrain(now, sig);
    this.stop.drainAt = now + delay * 1000;
    this.d.log.info(`${sig}: shutdown delay: ${delay} s before draining; not ready, still serving with ${this.aliveCount()} worker(s)`);
    // A generation still booting will never serve: it goes now.
    for (const w of this.workers) if (w.generation !== this.current) w.drain(now, { kind: 'shutdown', sig });
  }

  private startDrain(now: number, why: string): void {
    const sig = this.stop?.sig ?? 'SIGQUIT';
    if (this.stop) this.stop.drainAt = undefined;
    this.d.log.info(`${why}: graceful shutdown; draining ${this.aliveCount()} worker(s)`);
    for (const w of this.workers) w.drain(now, { kind: 'shutdown', sig });
  }

  private handleInt(now: number): void {
    if (this.phase !== 'stopping') this.d.notifier.stopping();
    this.phase = 'stopping';
    this.stop ??= { sig: 'SIGINT', since: now, drainAt: undefined };
    this.goFast(now, this.stop.drainAt !== undefined ? 'SIGINT during the shutdown delay' : 'SIGINT');
  }

  /** The stop under way, for /readyz and status: since when, and how long until the drain (ms). */
  stopping(): { since: number; drainInMs: number | undefined } | undefined {
    if (!this.stop) return undefined;
    const d = this.stop.drainAt;
    return { since: this.stop.since, drainInMs: d === undefined ? undefined : Math.max(0, d - this.rt.now()) };
  }

  private checkStopBudget(r: Resolution): void {
    const warning = stopBudgetWarning(r);
    if (warning) this.d.log.warn(warning);
  }

  /** The master reopens its error log and tells every worker to reopen the access log. */
  private handleUsr1(): void {
    this.d.logs.errorLog.sink.reopen();
    if (this.d.logs.access?.kind === 'file') this.broadcast({ t: 'reopen' });
    this.d.log.info('USR1: log files reopened');
  }

  /** Built-in rotation of the access log: the master decides, every worker reopens. */
  private rotateAccess(now: number): void {
    const plan = this.d.logs.access;
    if (plan?.kind !== 'file') return;
    const path = plan.files.due(Date.now(), now);
    if (path === undefined) return;
    this.broadcast({ t: 'reopen', path });
    this.d.log.debug(`access log rotated: workers now write ${path}`);
  }

  private broadcast(msg: MasterMessage): void {
    for (const w of this.workers) w.send(msg);
  }

  /** TTIN (+1) or TTOU (-1): see Scaler.signal. */
  private handleTtinTtou(by: 1 | -1, now: number): void {
    if (this.phase === 'running' && this.current) this.scaler.signal(by, now, this.current, this.genWorkers(this.current));
  }

  /** A range of workers follows the load while one generation serves alone (not during a reload). */
  private autoscale(now: number): void {
    const gen = this.current;
    if (this.phase !== 'running' || !gen || this.pending || this.configLoading) return;
    this.scaler.run(now, gen, this.genWorkers(gen));
  }

  private goFast(now: number, why: string): void {
    if (this.stop) this.stop.drainAt = undefined;
    this.d.log.info(`${why}: fast shutdown`);
    for (const w of this.workers) w.stopFast(now, { kind: 'fast-shutdown' });
  }

  // ---- reloads -------------------------------------------------------------------------

  private startReload(): void {
    const seq = ++this.reloadSeq;
    this.configLoading = true;
    this.d.notifier.reloading();
    this.d.log.info(`HUP: reload #${seq}: re-reading configuration`);
    this.d.reloadConfig().then(
      (resolution) => {
        this.configLoading = false;
        if (this.phase !== 'running') return;
        for (const line of restartOnlyWarnings(this.d.resolution.config, resolution.config)) this.d.log.warn(line);
        this.d.log.level = resolution.config.logLevel;
        this.checkStopBudget(resolution);
        // The new generation starts with the count serving now, kept within its range.
        this.pending = new Generation(this.nextGenId++, resolution, this.current?.target);
        this.d.log.info(`reload #${seq}: starting generation ${this.pending.id} (${this.pending.target} workers)`);
        this.wake();
      },
      (err: unknown) => {
        this.configLoading = false;
        const reason = `configuration invalid: ${(err as Error).message}`;
        const code = err instanceof CorralError ? err.code : undefined;
        this.reloadFinished(false, reason, { result: 'failed', reason, code, serving: this.current?.id ?? 0 });
        this.wake();
      },
    );
  }

  private reloadFinished(ok: boolean, detail: string, outcome: ReloadOutcome): void {
    this.metrics.reloadFinished(ok);
    void this.hooks.reloadEnded(this.reloadSeq, outcome);
    const at = new Date().toISOString().slice(11, 19);
    this.lastReload = ok ? `ok at ${at}` : `FAILED at ${at}: ${detail}`;
    if (ok) this.d.log.info(`reload #${this.reloadSeq} done: ${detail}`);
    else this.d.log.error(`reload #${this.reloadSeq} failed, previous generation keeps serving: ${detail}`);
    this.d.notifier.ready(this.status());
    this.d.control?.broadcast({ t: 'reload', seq: this.reloadSeq, ok, detail });
    this.d.onReload?.(ok, detail);
    if (this.reloadQueued && this.phase === 'running') {
      this.reloadQueued = false;
      this.startReload();
    }
  }

  private progressPending(now: number): void {
    const gen = this.pending;
    if (!gen || this.phase === 'stopping') return;
    const ready = this.readyIn(gen);
    if (ready < gen.target) return;
    const previous = this.current;
    this.current = gen;
    this.pending = undefined;
    for (const w of this.workers) if (w.generation !== gen) w.drain(now, { kind: 'reload', gen: gen.id });
    this.hooks.use(gen.resolution);
    void this.hooks.generationReady(gen.id, this.genWorkers(gen).filter((w) => w.serving), previous && { id: previous.id, reload: this.reloadSeq });
    if (!previous) {
      this.phase = 'running';
      this.d.log.info(`ready: ${ready} worker(s) serving`);
      this.d.notifier.ready(this.status());
      this.d.onServing?.();
      if (this.reloadQueued) {
        this.reloadQueued = false;
        this.startReload();
      }
    } else {
      this.reloadFinished(true, `generation ${gen.id} serving with ${ready} worker(s); generation ${previous.id} draining`, { result: 'succeeded', generation: gen.id, previous: previous.id });
    }
  }

  /** A worker of the pending generation failed to boot. */
  private pendingFailed(w: WorkerHandle, reason: string, now: number): void {
    const gen = this.pending!;
    if (!this.current) {
      if (w.bootFailure?.kind === 'load') return this.fail(new CorralError(w.bootFailure.code ?? 'E_APP_LOAD', w.bootFailure.message), now);
      // The app answers its warm-up paths the same way at every retry.
      if (w.bootFailure?.kind === 'warmup') return this.fail(new CorralError('E_WARMUP', w.bootFailure.message), now);
      // A socket the workers cannot listen on (a passed TCP socket whose connection died looks
      // bound until listen(2) says EINVAL) fails every retry alike: a configuration error,
      // which the unit does not restart, instead of exit 3 and a restart loop.
      if (w.bootFailure?.kind === 'listen') return this.fail(new CorralError('E_BIND_FAILED', `workers cannot listen on ${this.d.listeners.map((l) => l.label).join(', ') || 'the listeners'}: ${w.bootFailure.message}`), now);
      const n = gen.recordFailure(w.slot, now);
      if (n >= BOOT_ATTEMPTS) {
        return this.fail(new CorralError('E_WORKER_BOOT', `workers failed to boot ${n} times in a row (last: ${reason}); giving up`), now);
      }
      this.d.log.warn(`${w.name} failed to boot (${reason}); retry ${n}/${BOOT_ATTEMPTS - 1}`);
      return;
    }
    this.pending = undefined;
    for (const other of this.genWorkers(gen)) other.drain(now, { kind: 'reload-failed', gen: gen.id });
    this.reloadFinished(false, `${w.name}: ${reason}`, {
      result: 'rolled-back', reason: `${w.name}: ${reason}`, generation: gen.id, serving: this.current.id, worker: { slot: w.slot, pid: w.pid },
    });
  }

  private fail(err: CorralError, now: number): void {
    if (this.failure) return;
    this.failure = err;
    this.d.log.fatal(err.message);
    this.phase = 'stopping';
    this.goFast(now, 'start failed');
  }

  // ---- workers -------------------------------------------------------------------------

  private spawn(gen: Generation, slot: number, now: number): void {
    const child = this.rt.spawn({
      config: gen.config, gen: gen.id, slot, listeners: this.d.listeners, cwd: this.d.cwd,
      env: { ...gen.resolution.envFileVars, ...this.d.baseEnv },
      access: accessContext(this.d.logs),
      hooks: workerHooksSpec(gen.resolution),
    });
    const w = new WorkerHandle(child, gen, slot, now);
    this.workers.add(w);
    this.metrics.workerStarted();
    this.relay.join(w);
    child.on('message', (msg) => this.onMessage(w, msg));
    child.once('exit', (code, signal) => {
      w.exited(code, signal);
      this.wake();
    });
    this.openChannels++;
    child.once('close', () => {
      this.openChannels--;
      this.wake();
    });
    child.once('error', (err) => {
      this.d.log.error({ err }, `${w.name}: process error`);
      w.spawnFailed();
      this.wake();
    });
    this.d.log.info(`spawned ${w.name}`);
  }

  /**
   * A message on a worker's channel: corral's own, or the Socket.IO cluster adapter's, which
   * is passed on at once without waking the loop (a busy app sends many). Anything else the
   * app sent is ignored.
   */
  private onMessage(w: WorkerHandle, msg: unknown): void {
    const now = this.rt.now();
    if (isAdapterMessage(msg)) {
      w.heard(now);
      return this.relay.relay(w, msg);
    }
    if (!isWorkerMessage(msg)) return;
    w.heard(now);
    switch (msg.t) {
      case 'ready':
        w.ready(now);
        break;
      case 'hb':
        w.heartbeat(msg);
        if (msg.m) this.metrics.workerReported(w, msg.m);
        break;
      case 'retire':
        this.retireAsked(w, msg.reason);
        break;
      case 'conns':
        w.connsReported(msg.kept);
        this.balancer.noteReport();
        break;
      case 'boot-failed':
        w.bootFailed({ kind: msg.kind, message: msg.message, code: msg.kind === 'load' && isAppLoadCode(msg.code) ? msg.code : undefined });
        break;
      case 'tls-wanted': {
        const pair = this.d.tls?.message();
        if (pair) w.send(pair);
        return;
      }
    }
    this.wake();
  }

  /**
   * A worker asks to be replaced. While it serves, its replacement is started first (no
   * capacity dip). Before it is ready (an uncaught exception in the app's init) it is a failed
   * boot: an app that throws while starting will likely throw again, so the usual back-off
   * applies, and at start the usual limit (exit 3) instead of a respawn loop; at a reload the
   * reload fails and the old generation keeps serving. It is killed at once: it never served.
   */
  private retireAsked(w: WorkerHandle, reason: RetireReason): void {
    const live = w.generation === this.current || w.generation === this.pending;
    if (this.phase === 'stopping' || !live) return;
    if (w.state === 'booting') {
      this.d.log.error(`${w.name} asks to be replaced (${reason}) before it was ready; killing it`);
      return w.kill({ kind: 'boot-crash', reason });
    }
    if (w.retire({ kind: 'asked', reason })) this.d.log.info(`${w.name} asks to be replaced (${reason})`);
  }

  private handleExit(w: WorkerHandle, now: number): void {
    this.workers.delete(w);
    this.relay.leave(w);
    w.reap();
    const was = w.exitedWhile;
    const { reason, message, level } = exitOutcome(w);
    this.metrics.workerExited(w, reason);
    void this.hooks.run('workerExited', workerExitedEvent(w, reason));
    const gen = w.generation;
    const live = gen === this.current || gen === this.pending;
    if (!live && was !== 'draining' && this.phase !== 'stopping') {
      // Its generation was abandoned (a failed reload) before it could be told to drain.
      this.d.log.warn(`${message} (generation ${w.gen} was abandoned)`);
      return;
    }
    this.d.log[level](message);
    if (this.phase === 'stopping' || was === 'draining' || !live) return;
    if (was === 'booting') {
      if (gen === this.pending) return this.pendingFailed(w, firstLine(w.bootFailure?.message ?? message), now);
      gen.recordFailure(w.slot, now);
      return;
    }
    // A serving worker died: replace it, backing off if its slot keeps crashing.
    if (now - w.readyAt >= HEALTHY_RUN_MS) gen.clearFailures(w.slot);
    else gen.recordFailure(w.slot, now);
  }

  /** Acts on what each worker's clocks say is overdue (the rules live in WorkerHandle). */
  private checkWorkers(now: number): void {
    for (const w of this.workers) {
      const cfg = w.config;
      switch (w.overdue(now)) {
        case 'kill': {
          const why = w.stopCause && stopText(w.stopCause, w.retireCause);
          this.d.log.warn(`${w.name} still running ${((now - (w.stopAskedAt ?? now)) / 1000).toFixed(1)} s after it was told to stop (${why}); killing it`);
          w.kill();
          break;
        }
        case 'boot-timeout':
          this.d.log.error(`${w.name} not ready after ${cfg.bootTimeout} s (boot-timeout); killing it`);
          w.kill({ kind: 'boot-timeout', seconds: cfg.bootTimeout });
          break;
        case 'silent': {
          const busy = w.busy
            ? `; at its last check-in it was handling ${w.busy.method} ${w.busy.url} (for ${(w.busy.forMs / 1000).toFixed(1)} s)`
            : `; no request was in progress at its last check-in`;
          this.d.log.error(`${w.name} silent for ${((now - w.lastCheckin) / 1000).toFixed(1)} s (timeout ${cfg.timeout} s: event loop blocked?)${busy}; killing it`);
          w.kill({ kind: 'heartbeat-missed' });
          break;
        }
        case undefined:
          if (w.state === 'ready' && cfg.maxMemory > 0 && w.rss > cfg.maxMemory && this.phase === 'running' && w.generation === this.current) {
            this.retireForMemory(w, now);
          }
      }
    }
  }

  private retireForMemory(w: WorkerHandle, now: number): void {
    const cfg = w.config;
    const cause = { kind: 'memory', rss: w.rss, max: cfg.maxMemory } as const;
    if (!w.retire(cause)) return;
    // Over the ceiling at its first check-in: the ceiling is below what the app needs to
    // start, and replacing it again and again would only churn. Back off and say so.
    const atBoot = w.firstRss > cfg.maxMemory;
    if (atBoot) w.generation.recordFailure(w.slot, now);
    this.d.log.warn(`${w.name} ${retireText(cause)}; replacing it${atBoot ? ' (it started above the ceiling: max-memory is too low for this app)' : ''}`);
  }

  /**
   * Keeps every slot of the serving and pending generations filled. A slot serves through
   * its newest worker: older ones are drained once a newer one serves, and a retiring
   * worker gets its replacement started before it is drained (no capacity dip).
   */
  private maintain(now: number): void {
    if (this.phase === 'stopping') return;
    for (const gen of [this.current, this.pending]) {
      if (!gen) continue;
      for (let slot = 1; slot <= gen.target; slot++) {
        const inSlot = this.genWorkers(gen).filter((w) => w.slot === slot && w.state !== 'draining');
        const booting = inSlot.filter((w) => w.state === 'booting');
        const serving = inSlot.filter((w) => w.serving).sort((a, b) => a.spawnedAt - b.spawnedAt);
        const newest = serving[serving.length - 1];
        for (const old of serving.slice(0, -1)) old.drain(now, { kind: 'replaced' });
        const needed = !newest || newest.state === 'retiring';
        if (needed && booting.length === 0 && gen.mayRespawn(slot, now)) this.spawn(gen, slot, now);
      }
    }
  }

  // ---- helpers -------------------------------------------------------------------------

  /** The one count of ready workers, for STATUS=, /readyz and a reload's progress (see WorkerHandle.serving). */
  private readyIn(gen: Generation): number {
    return this.genWorkers(gen).filter((w) => w.serving).length;
  }

  private genWorkers(gen: Generation): WorkerHandle[] {
    return [...this.workers].filter((w) => w.generation === gen && w.alive);
  }

  private aliveCount(): number {
    let n = 0;
    for (const w of this.workers) if (w.alive) n++;
    return n;
  }

  private status(): string {
    return statusLine({
      phase: this.phase,
      current: this.current && { id: this.current.id, target: this.current.target, ready: this.readyIn(this.current) },
      pending: this.pending && { id: this.pending.id, target: this.pending.target, ready: this.readyIn(this.pending) },
      draining: [...this.workers].filter((w) => w.state === 'draining').length,
      lastReload: this.lastReload,
      drainInMs: this.stopping()?.drainInMs,
    });
  }

  /** The master's picture for /metrics, /readyz and `corral status`. */
  private view(): MasterView {
    const serving = this.current;
    return {
      phase: this.phase,
      generation: serving?.id ?? 0,
      desired: (serving ?? this.pending)?.target ?? this.d.resolution.config.workers.min,
      scaling: { ...this.scaler.figures(serving ?? this.pending, this.d.resolution.config.workers), why: this.scaler.explain(serving, this.rt.now()) },
      serving: serving && { ready: this.readyIn(serving), target: serving.target },
      lastReload: this.lastReload,
      now: this.rt.now(),
      lastTickAt: this.lastTickAt,
      workers: [...this.workers],
      listeners: this.d.listeners,
      backlog: (serving ?? this.pending)?.config.backlog ?? this.d.resolution.config.backlog,
      drainInMs: this.stopping()?.drainInMs,
      tls: this.d.tls?.figures(),
    };
  }

  private pingWatchdog(now: number): void {
    const every = this.d.notifier.watchdogIntervalMs;
    if (every > 0 && now - this.lastWatchdog >= every * 0.9) {
      this.lastWatchdog = now;
      this.d.notifier.watchdog();
    }
  }

  /** The one place that knows when the loop must run next. */
  private nextDeadline(now: number): number {
    let next = Math.min(now + MAX_SLEEP_MS, Math.max(now + 1, this.balancer.nextAt()));
    if (this.stop?.drainAt !== undefined) next = Math.min(next, this.stop.drainAt);
    const wd = this.d.notifier.watchdogIntervalMs;
    if (wd > 0) next = Math.min(next, this.lastWatchdog + wd * 0.9);
    // +1: a deadline is overdue only once strictly passed.
    for (const w of this.workers) next = Math.min(next, w.deadline() + 1);
    if (this.d.logs.access?.kind === 'file') next = Math.min(next, Math.max(now + 1, this.d.logs.access.files.nextCheckAt()));
    for (const gen of [this.current, this.pending]) if (gen) next = Math.min(next, gen.nextRespawnAt(now));
    next = Math.min(next, this.scaler.nextAt(this.current, now));
    return next;
  }

  /** The masterExiting hook (bounded by hook-timeout), then the exit; signals meanwhile change nothing. */
  private finish(): void {
    this.rt.clearTimeout(this.timer);
    if (this.exiting) return;
    this.exiting = true;
    // The loop is done; a last WATCHDOG=1 gives the exit's wait (at most hook-timeout) a full period.
    if (this.d.notifier.watchdogIntervalMs > 0) this.d.notifier.watchdog();
    const f = this.failure;
    void this.hooks.beforeExit({
      exitCode: f?.exitCode ?? 0, signal: f ? undefined : this.stop?.sig, error: f && { code: f.code, message: f.message },
    }).then(() => this.exit());
  }

  private exit(): void {
    for (const [sig, fn] of this.listenerFns) this.rt.offSignal(sig, fn);
    this.d.control?.close();
    this.d.tls?.close();
    for (const l of this.d.listeners) l.cleanup();
    if (!this.failure) this.d.log.info('all workers stopped; exiting');
    // Flush the log writers before the process may exit.
    void this.d.logs.errorLog.sink.close().then(() => this.done?.(this.failure));
  }
}
