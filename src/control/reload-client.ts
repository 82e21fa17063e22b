import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { CorralError } from '../errors.js';
import { parseControlLine, type ServerMessage } from './protocol.js';
import { trustedSocketPath } from './path.js';

export interface ReloadResult {
  seq: number;
  detail: string;
}

/** Connecting and hearing the master's hello takes milliseconds; this bounds a stuck peer. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

function signalMaster(pid: number): void {
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CorralError('E_RELOAD_TARGET', code === 'ESRCH' ? `no process with PID ${pid}` : `cannot signal PID ${pid} (${code}); run as the service's user or root`);
  }
}

/**
 * `corral reload PID`: makes sure PID is a corral master, then sends HUP; with wait,
 * resolves when that reload is done and rejects if it failed.
 *
 * PID is a corral master when its control socket (owned by PID's user, see
 * trustedSocketPath) answers with a hello naming PID. Only then is it signalled, with or
 * without --wait: a PID typed wrong, or reused by another program, is never signalled.
 */
export async function reload(pid: number, opts: { wait: boolean; timeoutMs: number }): Promise<ReloadResult | undefined> {
  const path = trustedSocketPath(pid);
  const socket = connect(path);
  try {
    return await converse(socket, pid, path, opts);
  } finally {
    socket.destroy();
  }
}

function converse(socket: Socket, pid: number, path: string, opts: { wait: boolean; timeoutMs: number }): Promise<ReloadResult | undefined> {
  return new Promise((resolve, reject) => {
    let after: number | undefined;
    let timer = setTimeout(() => fail(new CorralError('E_RELOAD_TARGET', `the control socket ${path} did not answer within ${HANDSHAKE_TIMEOUT_MS / 1000} s; is PID ${pid} a corral master?`)), HANDSHAKE_TIMEOUT_MS);
    let done = false;
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      settle();
    };
    const fail = (err: Error) => finish(() => reject(err));
    socket.on('error', (err) => fail(new CorralError('E_RELOAD_TARGET', `control socket ${path} of PID ${pid}: ${err.message}`)));
    socket.on('close', () => fail(after === undefined
      ? new CorralError('E_RELOAD_TARGET', `the control socket ${path} closed before saying hello; is PID ${pid} a corral master?`)
      : new CorralError('E_RELOAD_FAILED', `master ${pid} closed the control socket before the reload finished (it is stopping?)`)));
    socket.on('connect', () => socket.write('watch\n'));
    const lines = createInterface({ input: socket, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (done) return;
      let msg: ServerMessage;
      try {
        msg = parseControlLine(line);
      } catch (err) {
        return fail(new CorralError('E_RELOAD_TARGET', `the control socket ${path} of PID ${pid} sent ${(err as Error).message}; is it a corral master?`));
      }
      if (after === undefined) {
        if (msg.t !== 'hello') return fail(new CorralError('E_RELOAD_TARGET', `the control socket ${path} did not start with a hello; is PID ${pid} a corral master?`));
        if (msg.pid !== pid) return fail(new CorralError('E_RELOAD_TARGET', `the control socket ${path} answers for PID ${msg.pid}, not ${pid}; nothing was signalled`));
        after = msg.seq;
        try {
          signalMaster(pid);
        } catch (err) {
          return fail(err as Error);
        }
        if (!opts.wait) return finish(() => resolve(undefined));
        clearTimeout(timer);
        timer = setTimeout(() => fail(new CorralError('E_RELOAD_TIMEOUT', `reload of ${pid} not finished after ${opts.timeoutMs / 1000} s; it may still complete (see the logs)`)), opts.timeoutMs);
      } else if (msg.t === 'reload' && msg.seq > after) {
        const { seq, ok, detail } = msg;
        finish(() => (ok ? resolve({ seq, detail }) : reject(new CorralError('E_RELOAD_FAILED', `reload of ${pid} failed: ${detail}`))));
      }
    });
  });
}
