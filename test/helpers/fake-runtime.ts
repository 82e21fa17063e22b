import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, type Resolution } from '../../src/config/resolve.js';
import type { SettingName } from '../../src/config/settings.js';
import type { Hooks } from '../../src/config/hooks.js';
import type { MasterMessage, WorkerMessage } from '../../src/ipc/messages.js';
import type { Logger } from '../../src/logging/logger.js';
import { Master, type MasterDeps } from '../../src/master/master.js';
import type { MasterRuntime } from '../../src/master/runtime.js';
import type { Notifier } from '../../src/systemd/notify.js';
import type { SpawnContext } from '../../src/master/spawn.js';
import type { WorkerProcess } from '../../src/master/worker-handle.js';
import type { MasterLogs } from '../../src/master/master-logs.js';
import { isAdapterMessage, type AdapterMessage } from '../../src/master/relay.js';

let nextPid = 1000;

/** A worker process that is only an object: the test says when it is ready, dies or exits. */
export class FakeChild extends EventEmitter implements WorkerProcess {
  readonly pid = nextPid++;
  connected = true;
  readonly sent: MasterMessage[] = [];
  /** Socket.IO adapter messages the master passed on to this worker. */
  readonly relayed: AdapterMessage[] = [];
  /** While true, written messages stay in the channel: their callbacks wait for `flush()`. */
  stuck = false;
  private readonly unwritten: Array<() => void> = [];
  readonly signals: NodeJS.Signals[] = [];
  exited = false;
  /** Exit by itself when told to drain or stop (as a worker without requests does). */
  exitOnStop = true;

  constructor(
    readonly ctx: SpawnContext,
    private readonly rt: FakeRuntime,
  ) {
    super();
  }

  get gen(): number {
    return this.ctx.gen;
  }

  get slot(): number {
    return this.ctx.slot;
  }

  send(msg: MasterMessage | AdapterMessage, cb: (err: Error | null) => void): boolean {
    if (isAdapterMessage(msg)) {
      this.relayed.push(msg);
      if (!this.stuck) cb(null);
      else this.unwritten.push(() => cb(null));
      return !this.stuck;
    }
    this.sent.push(msg);
    cb(null);
    if (this.exitOnStop && (msg.t === 'drain' || msg.t === 'stop')) this.rt.later(() => this.die(0, null));
    return true;
  }

  kill(sig: NodeJS.Signals): boolean {
    this.signals.push(sig);
    if (sig === 'SIGKILL') this.rt.later(() => this.die(null, 'SIGKILL'));
    return true;
  }

  say(msg: WorkerMessage): void {
    this.emit('message', msg);
  }

  /** Sends anything on the channel, as app code can. */
  sayRaw(msg: unknown): void {
    this.emit('message', msg);
  }

  /** The channel is read again: what waited is written. */
  flush(): void {
    this.stuck = false;
    for (const cb of this.unwritten.splice(0)) cb();
  }

  ready(): void {
    this.say({ t: 'ready' });
  }

  die(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    this.connected = false;
    this.emit('exit', code, signal);
    this.emit('close');
  }

  got(t: MasterMessage['t']): boolean {
    return this.sent.some((m) => m.t === t);
  }
}

interface Timer {
  at: number;
  fn: () => void;
}

/** A clock, timers and signals that only move when the test moves them. */
export class FakeRuntime implements MasterRuntime {
  t = 0;
  readonly children: FakeChild[] = [];
  private immediates: Array<() => void> = [];
  private readonly timers = new Set<Timer>();
  private readonly handlers = new Map<string, () => void>();

  spawn(ctx: SpawnContext): FakeChild {
    const c = new FakeChild(ctx, this);
    this.children.push(c);
    return c;
  }

  now(): number {
    return this.t;
  }

  onSignal(sig: string, fn: () => void): void {
    this.handlers.set(sig, fn);
  }

  offSignal(sig: string): void {
    this.handlers.delete(sig);
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { at: this.t + ms, fn };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(h: unknown): void {
    this.timers.delete(h as Timer);
  }

  setImmediate(fn: () => void): void {
    this.immediates.push(fn);
  }

  later(fn: () => void): void {
    this.immediates.push(fn);
  }

  signal(sig: NodeJS.Signals): void {
    const fn = this.handlers.get(sig);
    if (!fn) throw new Error(`no handler for ${sig}`);
    fn();
  }

  /** Runs everything that is due now, including promise callbacks, until nothing is left. */
  async settle(): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      await new Promise((r) => setImmediate(r));
      const due = this.immediates.splice(0);
      if (due.length === 0) return;
      for (const fn of due) fn();
    }
    throw new Error('the loop never settles');
  }

  /** Moves the clock on by `ms`, firing timers on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await this.settle();
      const next = [...this.timers].sort((a, b) => a.at - b.at)[0];
      if (!next || next.at > end) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
    await this.settle();
  }

  /** Children alive in a generation. */
  alive(gen?: number): FakeChild[] {
    return this.children.filter((c) => !c.exited && (gen === undefined || c.gen === gen));
  }
}

export interface Harness {
  rt: FakeRuntime;
  master: Master;
  lines: string[];
  notes: string[];
  /** Settles when run() does; holds its error (exit 3 and 4) if any. */
  result: Promise<Error | undefined>;
  reloads: number;
  /** What the next reload's configuration read does. */
  nextReload: (() => Promise<Resolution>) | undefined;
}

export async function resolution(cli: Partial<Record<SettingName, unknown>> = {}): Promise<Resolution> {
  const cwd = mkdtempSync(join(tmpdir(), 'corral-unit-'));
  return resolveConfig({ cli: { app: 'app.mjs', workers: '2', ...cli }, env: {}, cwd });
}

/**
 * A Master with fake processes, clock, log, notifier and logs, already running; `hooks` as a
 * config file would give them; `deps` replaces any of its dependencies.
 */
export async function startMaster(cli: Partial<Record<SettingName, unknown>> = {}, hooks: Hooks = {}, deps: Partial<MasterDeps> = {}): Promise<Harness> {
  const rt = new FakeRuntime();
  const lines: string[] = [];
  const notes: string[] = [];
  const record = (...args: unknown[]) => lines.push(String(args.find((a) => typeof a === 'string') ?? ''));
  const log = { trace: record, debug: record, info: record, warn: record, error: record, fatal: record, level: 'info' } as unknown as Logger;
  const notifier = {
    watchdogIntervalMs: 0,
    ready: () => notes.push('READY'),
    reloading: () => notes.push('RELOADING'),
    stopping: () => notes.push('STOPPING'),
    status: (s: string) => notes.push(`STATUS=${s}`),
    watchdog: () => {},
  } as unknown as Notifier;
  const logs = { errorLog: { sink: { reopen: () => {}, close: async () => {} } }, access: undefined, accessPrefix: '' } as unknown as MasterLogs;
  const first = { ...(await resolution(cli)), hooks };
  const h = { rt, lines, notes, reloads: 0, nextReload: undefined } as unknown as Harness;
  h.master = new Master({
    resolution: first, listeners: [], log, logs, notifier, control: undefined, baseEnv: {}, cwd: '/', runtime: rt,
    reloadConfig: () => {
      h.reloads++;
      return h.nextReload ? h.nextReload() : Promise.resolve(first);
    },
    ...deps,
  });
  h.result = h.master.run().then(() => undefined, (err: Error) => err);
  await rt.settle();
  return h;
}
