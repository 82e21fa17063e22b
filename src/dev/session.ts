/**
 * One `corral dev` session: the watcher, the warm spare, `rs` on stdin and the terminal
 * last for the whole session, while masters come and go. A master runs until Ctrl-C; only
 * when its first generation cannot start does the session wait for a change and start the
 * next one. A change while a master serves is its HUP.
 */
import { createInterface, type Interface } from 'node:readline';
import { openLogs, startMaster } from '../commands/start-master.js';
import type { Resolution } from '../config/resolve.js';
import { isAppLoadCode, isCorralError, type CorralError } from '../errors.js';
import type { Listener } from '../listeners/acquire.js';
import type { MasterLogs } from '../master/master-logs.js';
import { SparePool } from './spare-pool.js';
import { DevErrorLog, DevTerminal } from './terminal.js';
import type { Watcher, WatchOptions } from './watch.js';

export interface SessionOptions {
  resolution: Resolution;
  /** Reads the configuration again (a HUP, or a new start after a failed one). */
  load(): Promise<Resolution>;
  cwd: string;
  /** The app's file: always a place to look for an error, and named in the banner. */
  entry: string;
  spare: boolean;
  /** Said in the banner after the watched paths ("(polling every 500 ms)"). */
  watchNote: string;
  /** Builds the watcher around the session's change handler. */
  watcher(onChange: WatchOptions['onChange'], onWarning: NonNullable<WatchOptions['onWarning']>): Watcher;
}

type Wake = 'change' | 'stop';
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const;

export class DevSession {
  private resolution: Resolution;
  /** The current master's log writers (a master closes its own when it stops). */
  private logs: MasterLogs;
  /** Files changed since a version last served: where an error's source is looked for. */
  private readonly changedSinceGood = new Set<string>();
  /** When the change being reloaded was seen, for "reloaded in N ms". */
  private changeAt: number | undefined;
  /** What a change (files) or `rs` (undefined) does now: reload, end a wait, or nothing. */
  private react: ((files: string[] | undefined) => void) | undefined;
  private readonly term: DevTerminal;
  private readonly watcher: Watcher;
  private readonly pool: SparePool;
  private readonly input: Interface | undefined;

  private constructor(private readonly o: SessionOptions, logs: MasterLogs) {
    this.resolution = o.resolution;
    this.logs = logs;
    // One terminal for the whole session, writing to the current master's error log.
    this.term = new DevTerminal((t) => this.logs.errorLog.sink.write(t), o.cwd, process.stderr.isTTY === true);
    this.watcher = o.watcher((files) => this.react?.(files), (m) => this.term.warn(m));
    this.pool = new SparePool(o.spare);
    if (process.stdin.readable) {
      this.input = createInterface({ input: process.stdin, terminal: false });
      this.input.on('line', (line) => {
        if (line.trim() === 'rs') this.react?.(undefined);
      });
    }
  }

  static async open(o: SessionOptions): Promise<DevSession> {
    return new DevSession(o, await openLogs(o.resolution, o.cwd));
  }

  /** Runs masters until Ctrl-C; rejects with an error that is not the app failing to start. */
  async run(): Promise<void> {
    this.watcher.start();
    try {
      for (;;) {
        const failure = await this.runMaster();
        this.logs = await openLogs(this.resolution, this.o.cwd);
        if (!failure) return;
        // The first generation could not start: nothing serves yet, so wait for a fix.
        await this.term.showBootError(failure.message, this.candidates(), 'the app did not start; waiting for a change (or rs + Enter) to try again');
        if ((await this.nextChange()) === 'stop') return;
        await this.reread();
      }
    } finally {
      this.watcher.close();
      this.pool.close();
      this.input?.close();
      process.stdin.destroy();
      await this.logs.errorLog.sink.close();
    }
  }

  /** One master, until it stops (undefined) or its first generation fails to start. */
  private async runMaster(): Promise<CorralError | undefined> {
    const logs = this.logs;
    logs.errorLog = new DevErrorLog(logs.errorLog, this.term);
    this.pool.logs = logs;
    try {
      await startMaster({
        resolution: this.resolution,
        load: this.o.load,
        logs,
        cwd: this.o.cwd,
        spawn: this.pool.spawn,
        print: (text) => this.term.dim(text),
        onServing: (listeners) => this.serving(listeners),
        onReload: (ok, detail) => this.reloaded(ok, detail),
      });
      return undefined;
    } catch (err) {
      if (!isCorralError(err) || (!isAppLoadCode(err.code) && err.code !== 'E_WORKER_BOOT')) throw err;
      return err;
    } finally {
      this.react = undefined;
    }
  }

  private serving(listeners: Listener[]): void {
    const term = this.term;
    this.changedSinceGood.clear();
    term.clearBootError();
    const where = listeners.map((l) => (/^[\d.:[\]a-f]+:\d+$/i.test(l.label) ? `http://${l.label}` : l.label)).join(', ');
    const n = this.resolution.config.workers.min;
    term.ok(`serving ${term.short(this.o.entry)} on ${where} (${n} worker${n === 1 ? '' : 's'}, pid ${process.pid})`);
    term.dim(`watching ${this.watcher.what.map((p) => term.short(p) || '.').join(', ')}${this.o.watchNote}; rs + Enter reloads, Ctrl-C stops`);
    this.react = (files) => this.reload(files);
  }

  /** A change while a master serves: its HUP. */
  private reload(files: string[] | undefined): void {
    this.changeAt ??= performance.now();
    if (files) {
      for (const f of files) this.changedSinceGood.add(f);
      const named = files.slice(0, 3).map((f) => this.term.short(f)).join(', ');
      this.term.dim(`${named}${files.length > 3 ? ` and ${files.length - 3} more` : ''} changed`);
    } else {
      this.term.dim('rs: reloading');
    }
    process.kill(process.pid, 'SIGHUP');
  }

  private reloaded(ok: boolean, detail: string): void {
    const took = this.changeAt === undefined ? '' : ` in ${Math.round(performance.now() - this.changeAt)} ms`;
    this.changeAt = undefined;
    if (!ok) {
      void this.term.showBootError(detail, this.candidates(), 'reload failed: the last good version keeps serving; save a fix to reload');
      return;
    }
    this.changedSinceGood.clear();
    this.term.clearBootError();
    this.term.ok(`reloaded${took}`);
  }

  /** Waits (without a master) for a change, `rs`, or Ctrl-C. */
  private nextChange(): Promise<Wake> {
    return new Promise((resolveWake) => {
      const stop = () => done('stop');
      const done = (w: Wake) => {
        this.react = undefined;
        for (const s of STOP_SIGNALS) process.off(s, stop);
        resolveWake(w);
      };
      for (const s of STOP_SIGNALS) process.once(s, stop);
      this.react = (files) => {
        for (const f of files ?? []) this.changedSinceGood.add(f);
        if (files) this.term.dim(`${files.map((f) => this.term.short(f)).join(', ')} changed: starting again`);
        done('change');
      };
    });
  }

  /** Before a new start: the configuration again (the last good one when it is broken), and log writers for it. */
  private async reread(): Promise<void> {
    this.resolution = await this.o.load().catch((err: unknown) => {
      this.term.warn(`configuration: ${(err as Error).message}`);
      return this.resolution;
    });
    await this.logs.errorLog.sink.close();
    this.logs = await openLogs(this.resolution, this.o.cwd);
  }

  /** Where a boot error's source may be: what changed since the last good version, and the app. */
  private candidates(): string[] {
    return [...this.changedSinceGood, this.o.entry];
  }
}
