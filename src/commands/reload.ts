import { ControlConnection, HANDSHAKE_TIMEOUT_MS } from '../control/client.js';
import { CorralError, isCorralError } from '../errors.js';

interface ReloadResult {
  seq: number;
  detail: string;
}

function signalMaster(pid: number): void {
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CorralError('E_RELOAD_TARGET', code === 'ESRCH' ? `no process with PID ${pid}` : `cannot signal PID ${pid} (${code}); run as the service's user or root`);
  }
}

/** A refusal before the signal says that nothing was signalled. */
function untouched(err: unknown): unknown {
  if (!isCorralError(err) || err.code !== 'E_RELOAD_TARGET') return err;
  const m = err.message;
  return new CorralError(err.code, m.endsWith('?') ? `${m} Nothing was signalled` : `${m}; nothing was signalled`, { cause: err });
}

/**
 * `corral reload PID`: makes sure PID is a corral master, then sends HUP; with wait,
 * resolves when that reload is done and rejects if it failed.
 *
 * PID is a corral master when its control socket (owned by PID's user, see
 * control/trust.ts) answers `watch` with a hello naming PID. Only then is it signalled,
 * with or without --wait: a PID typed wrong, or reused by another program, is never signalled.
 */
export async function reload(pid: number, opts: { wait: boolean; timeoutMs: number }): Promise<ReloadResult | undefined> {
  let c: ControlConnection | undefined;
  try {
    let after: number;
    try {
      c = new ControlConnection({ pid, code: 'E_RELOAD_TARGET' });
      after = await hello(c, pid);
      signalMaster(pid);
    } catch (err) {
      throw untouched(err);
    }
    return opts.wait ? await finished(c, pid, after, opts.timeoutMs) : undefined;
  } finally {
    c?.close();
  }
}

/** The master's hello, which must name PID; its count of reloads started so far. */
async function hello(c: ControlConnection, pid: number): Promise<number> {
  c.send('watch');
  const msg = await c.next(
    HANDSHAKE_TIMEOUT_MS,
    () => c.refuse(`the control socket ${c.path} did not answer within ${HANDSHAKE_TIMEOUT_MS / 1000} s; is PID ${pid} a corral master?`),
    () => c.refuse(`the control socket ${c.path} closed before saying hello; is PID ${pid} a corral master?`),
  );
  if (msg.t !== 'hello') throw c.refuse(`the control socket ${c.path} did not start with a hello; is PID ${pid} a corral master?`);
  if (msg.pid !== pid) throw c.refuse(`the control socket ${c.path} answers for PID ${msg.pid}, not ${pid}`);
  return msg.seq;
}

/** Waits for the first reload numbered after `after` (the one this HUP started) to finish. */
async function finished(c: ControlConnection, pid: number, after: number, timeoutMs: number): Promise<ReloadResult> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const msg = await c.next(
      Math.max(0, end - performance.now()),
      () => new CorralError('E_RELOAD_TIMEOUT', `reload of ${pid} not finished after ${timeoutMs / 1000} s; it may still complete (see the logs)`),
      () => new CorralError('E_RELOAD_FAILED', `master ${pid} closed the control socket before the reload finished (it is stopping?)`),
    );
    if (msg.t !== 'reload' || msg.seq <= after) continue;
    if (!msg.ok) throw new CorralError('E_RELOAD_FAILED', `reload of ${pid} failed: ${msg.detail}`);
    return { seq: msg.seq, detail: msg.detail };
  }
}

/** `corral reload [--wait] [--timeout SECONDS] PID`; PID and the timeout come parsed (cli-args.ts). */
export async function reloadCommand(pid: number, opts: { wait?: boolean; timeout: number }): Promise<void> {
  const result = await reload(pid, { wait: opts.wait === true, timeoutMs: opts.timeout });
  if (result) process.stdout.write(`reload #${result.seq} done: ${result.detail}\n`);
}
