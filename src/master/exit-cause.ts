/**
 * Why a worker stopped, decided once. The master records a typed cause on the handle at the
 * moment it decides (replace, drain, kill); when the worker exits, this file derives both the
 * log line and the `reason` label of corral_worker_exits_total from that cause, and falls
 * back on the exit status only when the master decided nothing (a crash). No label is ever
 * read back out of a log line, so rewording a line cannot change a metric.
 */
import { WORKER_EXIT } from '../exit-codes.js';
import type { DrainReason, RetireReason } from '../ipc/messages.js';
import type { ExitReason } from '../metrics/definitions.js';
import type { Sig } from './signals.js';
import type { WorkerState } from './states.js';

/** Why a serving worker is to be replaced (it keeps serving until its replacement is ready). */
export type RetireCause =
  /** The worker asked: it reached max-requests, or the app threw an uncaught exception. */
  | { kind: 'asked'; reason: RetireReason }
  /** Its RSS went above max-memory (bytes). */
  | { kind: 'memory'; rss: number; max: number };

/** Why the master told a worker to stop, or killed it. */
export type StopCause =
  /** A newer worker of its slot serves (after it was retired, or it was simply superseded). */
  | { kind: 'replaced' }
  /** Its generation was replaced by a reload. */
  | { kind: 'reload'; gen: number }
  /** Its generation (a reload) failed to boot: the rest of it goes. */
  | { kind: 'reload-failed'; gen: number }
  /** Drained at a stop (TERM/QUIT). */
  | { kind: 'shutdown'; sig: Sig }
  /** Connections cut: INT, a second TERM during the drain, or a failed start. */
  | { kind: 'fast-shutdown' }
  /** Its slot is no longer wanted: TTOU, or the load fitted in fewer workers (a range of workers). */
  | { kind: 'scale-down'; by: 'ttou' | 'idle' }
  /** No check-in within timeout: killed. */
  | { kind: 'heartbeat-missed' }
  /** Not ready within boot-timeout (seconds): killed. */
  | { kind: 'boot-timeout'; seconds: number }
  /** Asked to be replaced before it was ready: killed, and counted as a failed boot. */
  | { kind: 'boot-crash'; reason: RetireReason };

/** What the master knows of a worker once it has exited (a WorkerHandle). */
export interface ExitedWorker {
  readonly name: string;
  /** Its state when the exit was handled. */
  readonly exitedWhile: Exclude<WorkerState, 'dead'> | undefined;
  readonly exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined;
  readonly killedBy: NodeJS.Signals | undefined;
  readonly retireCause: RetireCause | undefined;
  readonly stopCause: StopCause | undefined;
  /** It reported ready at least once (a worker that never did failed to boot, unless it stopped as told). */
  readonly everReady: boolean;
  /** Why it could not boot; `inferred` when the master worked it out (exit code, its own kill) rather than the worker said. */
  readonly bootFailure: { readonly message: string; readonly inferred?: boolean } | undefined;
}

const MiB = (bytes: number) => Math.round(bytes / 1048576);

export function retireText(c: RetireCause): string {
  return c.kind === 'asked' ? c.reason : `memory: RSS ${MiB(c.rss)} MiB above max-memory ${MiB(c.max)} MiB`;
}

/** The cause in a few words, as the log lines put it in parentheses. */
export function stopText(c: StopCause, retired: RetireCause | undefined): string {
  switch (c.kind) {
    case 'replaced': return `replaced (${retired ? retireText(retired) : 'superseded'})`;
    case 'reload': return `replaced by generation ${c.gen}`;
    case 'reload-failed': return `generation ${c.gen} failed to boot`;
    case 'shutdown': return `shutdown (${c.sig})`;
    case 'fast-shutdown': return 'fast shutdown';
    case 'scale-down': return c.by === 'ttou' ? 'TTOU' : 'scale-down: idle';
    case 'heartbeat-missed': return 'timeout';
    case 'boot-timeout': return `not ready within boot-timeout (${c.seconds} s)`;
    case 'boot-crash': return `asked to be replaced before it was ready (${c.reason})`;
  }
}

/** What the app is told when its worker drains (the drain signal's reason). */
export function drainReason(c: StopCause | undefined): DrainReason {
  switch (c?.kind) {
    case 'reload': return 'reload';
    case 'scale-down': return 'scale-down';
    case 'replaced': return 'recycle';
    default: return 'shutdown';
  }
}

/** It drained as told: asked to stop, not killed, and it exited 0 (or by the SIGTERM it was sent). */
function stoppedAsTold(w: ExitedWorker): boolean {
  const { code, signal } = w.exit ?? { code: null, signal: null };
  return w.exitedWhile === 'draining' && w.killedBy === undefined && (code === 0 || signal === 'SIGTERM');
}

/** corral's own SIGKILL ended it. */
function killedByCorral(w: ExitedWorker): boolean {
  return w.killedBy === 'SIGKILL' && w.exit?.signal === 'SIGKILL';
}

/**
 * It never served and its end is its own failure: it exited or died before it was ever
 * ready — even when the master had meanwhile told it to stop (a failed start or reload stops
 * the rest of the generation, which may fail on its own before it hears) — or corral killed
 * it for failing its boot (boot-timeout, an uncaught exception while booting).
 */
function failedBoot(w: ExitedWorker): boolean {
  if (w.everReady || stoppedAsTold(w)) return false;
  if (!killedByCorral(w)) return true;
  const stop = w.stopCause?.kind;
  return stop === 'boot-timeout' || stop === 'boot-crash';
}

/** The `reason` label: what the master decided, else (nothing decided) a crash. */
function exitLabel(w: ExitedWorker): ExitReason {
  const stop = w.stopCause?.kind;
  if (stop === 'heartbeat-missed' || stop === 'boot-timeout') return 'timeout';
  // A worker that was not told to drain died of its own accord (or was killed at boot for
  // it); so did one that failed its boot after it was told.
  if (w.exitedWhile !== 'draining' || failedBoot(w)) return 'crash';
  if (stop === 'shutdown' || stop === 'fast-shutdown') return 'shutdown';
  if (stop === 'scale-down') return 'scale_down';
  const retired = w.retireCause;
  if (retired?.kind === 'memory') return 'memory';
  if (retired?.kind === 'asked') return retired.reason === 'max-requests' ? 'max_requests' : 'crash';
  return 'reload';
}

/** Why a signal the master did not send may have come: where the cause likely lies outside corral. */
function signalHint(signal: NodeJS.Signals | null): string {
  if (signal === 'SIGKILL') return ' (perhaps out of memory: see `journalctl -k` for the OOM killer, or MemoryMax= in the unit)';
  if (signal === 'SIGSEGV' || signal === 'SIGBUS') return ' (a native addon crashed?)';
  if (signal === 'SIGABRT') return ' (V8 aborted: heap limit reached? see --max-old-space-size)';
  return '';
}

interface ExitOutcome {
  reason: ExitReason;
  message: string;
  level: 'info' | 'warn' | 'error';
}

/** The log line and the metric label of a worker's exit, both from its recorded cause. */
export function exitOutcome(w: ExitedWorker): ExitOutcome {
  return { reason: exitLabel(w), ...exitLine(w) };
}

/** What a worker's own exit code means, where corral gave it one (exit-codes.ts, WORKER_EXIT). */
function codeMeaning(code: number | null): string {
  return code === WORKER_EXIT.APP_LOAD ? ' (app could not be loaded)' : '';
}

function exitLine(w: ExitedWorker): Omit<ExitOutcome, 'reason'> {
  const { code, signal } = w.exit ?? { code: null, signal: null };
  const was = w.exitedWhile;
  const why = w.stopCause && stopText(w.stopCause, w.retireCause);
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  if (stoppedAsTold(w)) return { message: `${w.name} stopped (${why ?? 'drained'})`, level: 'info' };
  if (failedBoot(w)) {
    const end = killedByCorral(w) ? `killed by corral (${why ?? 'unresponsive'})` : signal ? `killed by ${signal}${signalHint(signal)}` : `exited with code ${code}${codeMeaning(code)}`;
    const said = w.bootFailure && !w.bootFailure.inferred ? `: ${w.bootFailure.message}` : '';
    return { message: `${w.name} failed to boot: ${end}${said}`, level: 'error' };
  }
  if (killedByCorral(w)) {
    return { message: `${w.name} was killed by corral (${why ?? 'unresponsive'})`, level: was === 'draining' ? 'warn' : 'error' };
  }
  if (was === 'draining') return { message: `${w.name} ${how} while draining (${why ?? 'drained'})${signalHint(signal)}`, level: 'warn' };
  return { message: `${w.name} ${how} while serving${signalHint(signal)}; replacing it`, level: 'error' };
}
