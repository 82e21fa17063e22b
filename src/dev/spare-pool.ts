/**
 * Hands the master warm spare workers (see spare-entry.ts) in place of freshly spawned ones. A
 * spare is started the way spawnWorker starts a worker, so it has the same descriptors; one
 * is used only when it is ready and was started for the same descriptors, working
 * directory and Node options, else the worker is spawned as usual. The next spare starts
 * once the worker it became is ready, so it does not compete with that worker's boot.
 */
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { spawnWorker, startWorkerProcess, workerSpec, type SpawnContext } from '../master/spawn.js';
import { attachWorkerLogs, type MasterLogs } from '../master/master-logs.js';
import type { SpareMessage } from './spare-entry.js';

const SPARE_ENTRY = fileURLToPath(new URL('./spare-entry.js', import.meta.url));
/** Start the next spare at the latest this long after one was used (the worker may hang). */
const REFILL_MAX_MS = 2000;

interface Spare {
  child: ChildProcess;
  shape: string;
  env: NodeJS.ProcessEnv;
  ready: boolean;
}

/** What must be equal for a spare to stand in for a worker: what it was spawned with. */
function shapeOf(ctx: SpawnContext): string {
  const nodeEnv = Object.entries(ctx.env).filter(([k]) => k.startsWith('NODE_') || k.startsWith('UV_')).sort();
  return JSON.stringify({
    capture: ctx.config.captureOutput, access: ctx.access ?? null, fds: ctx.listeners.map((l) => l.fd), cwd: ctx.cwd, nodeEnv,
  });
}

export class SparePool {
  private spare: Spare | undefined;
  private closed = false;
  private refillTimer: NodeJS.Timeout | undefined;

  /** The master's error log, changed with each new master of the session. */
  logs: MasterLogs | undefined;

  constructor(private readonly enabled: boolean) {}

  /** The master runtime's spawn. */
  readonly spawn = (ctx: SpawnContext): ChildProcess => {
    const w = this.take(ctx);
    if (w) {
      if (this.logs) attachWorkerLogs(w, `${ctx.gen}.${ctx.slot}`, this.logs, ctx.listeners.length);
      this.refillAfter(w, ctx);
      return w;
    }
    const cold = spawnWorker(ctx, this.logs!);
    this.refillAfter(cold, ctx);
    return cold;
  };

  close(): void {
    this.closed = true;
    clearTimeout(this.refillTimer);
    this.drop();
  }

  private take(ctx: SpawnContext): ChildProcess | undefined {
    const s = this.spare;
    if (!s || !s.ready || s.child.exitCode !== null || s.child.signalCode !== null || !s.child.connected) return undefined;
    if (s.shape !== shapeOf(ctx)) {
      this.drop();
      return undefined;
    }
    this.spare = undefined;
    const unset = Object.keys(s.env).filter((k) => !(k in ctx.env));
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) set[k] = v;
    const msg: SpareMessage = { t: 'activate', spec: workerSpec(ctx), set, unset };
    try {
      s.child.send(msg);
    } catch {
      s.child.kill('SIGKILL');
      return undefined;
    }
    return s.child;
  }

  /** Starts the next spare once `w` is ready or gone (or after REFILL_MAX_MS). */
  private refillAfter(child: ChildProcess, ctx: SpawnContext): void {
    if (!this.enabled || this.closed) return;
    clearTimeout(this.refillTimer);
    let done = false;
    const go = () => {
      if (done) return;
      done = true;
      clearTimeout(this.refillTimer);
      child.off('message', onMsg);
      if (!this.closed && !this.spare) this.start(ctx);
    };
    const onMsg = (m: { t?: string }) => {
      if (m?.t === 'ready') go();
    };
    child.on('message', onMsg);
    child.once('exit', go);
    this.refillTimer = setTimeout(go, REFILL_MAX_MS);
  }

  private start(ctx: SpawnContext): void {
    // A placeholder generation and slot: the real ones come with the activation.
    const child = startWorkerProcess({ ...ctx, gen: 0, slot: 0 }, SPARE_ENTRY);
    const spare: Spare = { child, shape: shapeOf(ctx), env: { ...ctx.env }, ready: false };
    const onMsg = (m: { t?: string }) => {
      if (m?.t !== 'spare-ready') return;
      spare.ready = true;
      child.off('message', onMsg);
    };
    child.on('message', onMsg);
    child.once('exit', () => {
      if (this.spare === spare) this.spare = undefined;
    });
    child.on('error', () => {});
    this.spare = spare;
  }

  private drop(): void {
    const s = this.spare;
    this.spare = undefined;
    if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  }
}
