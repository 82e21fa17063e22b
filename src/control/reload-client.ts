import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { CorralError } from '../errors.js';
import { candidateSocketPaths } from './path.js';

export interface ReloadResult {
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

/** `corral reload PID`: sends HUP; with wait, resolves when that reload is done and rejects if it failed. */
export async function reload(pid: number, opts: { wait: boolean; timeoutMs: number }): Promise<ReloadResult | undefined> {
  if (!opts.wait) {
    signalMaster(pid);
    return undefined;
  }
  const path = candidateSocketPaths(pid).find((p) => existsSync(p));
  if (!path) {
    throw new CorralError('E_RELOAD_TARGET', `PID ${pid} has no corral control socket (looked in ${candidateSocketPaths(pid).join(', ')}); is it a corral master?`);
  }
  const socket = connect(path);
  try {
    return await watchReload(socket, pid, opts.timeoutMs);
  } finally {
    socket.destroy();
  }
}

function watchReload(socket: Socket, pid: number, timeoutMs: number): Promise<ReloadResult> {
  return new Promise((resolve, reject) => {
    let after: number | undefined;
    let buf = '';
    const timer = setTimeout(() => reject(new CorralError('E_RELOAD_TIMEOUT', `reload of ${pid} not finished after ${timeoutMs / 1000} s; it may still complete (see the logs)`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.setEncoding('utf8');
    socket.on('error', (err) => fail(new CorralError('E_RELOAD_TARGET', `control socket of ${pid}: ${err.message}`)));
    socket.on('close', () => fail(new CorralError('E_RELOAD_FAILED', `master ${pid} closed the control socket before the reload finished (it is stopping?)`)));
    socket.on('connect', () => socket.write('watch\n'));
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, i)) as { t: string; seq: number; ok?: boolean; detail?: string };
        buf = buf.slice(i + 1);
        if (msg.t === 'hello') {
          after = msg.seq;
          try {
            signalMaster(pid);
          } catch (err) {
            fail(err as Error);
          }
        } else if (msg.t === 'reload' && after !== undefined && msg.seq > after) {
          clearTimeout(timer);
          socket.removeAllListeners('close');
          if (msg.ok) resolve({ seq: msg.seq, detail: msg.detail ?? '' });
          else reject(new CorralError('E_RELOAD_FAILED', `reload of ${pid} failed: ${msg.detail}`));
        }
      }
    });
  });
}
