import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/** Debian's redis-server (scripts/setup installs it), or undefined when it is not installed. */
export const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/** True once a Redis server answers PING on `port`. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setTimeout(1000, () => s.destroy());
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      got += String(d);
      if (got.includes('\r\n')) s.end();
    });
    s.on('close', () => resolve(got.startsWith('+PONG')));
    s.on('error', () => {});
  });
}

/** A redis-server of the test's own: a plain process on a loopback port, no persistence. */
export class Redis {
  readonly url: string;

  private constructor(
    private readonly proc: ChildProcess,
    port: number,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** Starts one and waits until it answers PING (10 s at most). */
  static async start(): Promise<Redis> {
    if (!REDIS_SERVER) throw new Error('redis-server is not installed');
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'corral-redis-'));
    const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    const r = new Redis(proc, port);
    const end = Date.now() + 10_000;
    while (!(await pong(port))) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
      if (Date.now() > end) {
        await r.stop();
        throw new Error('redis-server does not answer PING within 10 s');
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    return r;
  }

  /** Stops it by its PID: TERM, then KILL after 5 s. */
  async stop(): Promise<void> {
    const { proc } = this;
    if (!proc.pid || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    process.kill(proc.pid, 'SIGTERM');
    const timer = setTimeout(() => proc.exitCode === null && proc.signalCode === null && process.kill(proc.pid!, 'SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}
