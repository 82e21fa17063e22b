import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

// Two corral instances, as two hosts would run them (two masters, two ports), whose app uses
// @socket.io/redis-adapter with the `redis` client, against Debian's redis-server started
// here as a plain process on a loopback port.

const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

const started: Corral[] = [];
let redis: ChildProcess | undefined;
after(async () => {
  started.forEach((c) => c.kill());
  if (redis?.pid && redis.exitCode === null && redis.signalCode === null) {
    const gone = new Promise((r) => redis!.once('exit', r));
    process.kill(redis.pid, 'SIGTERM');
    const timer = setTimeout(() => redis?.pid && process.kill(redis.pid, 'SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
});

/** True once redis-server answers PING on `port`. */
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

async function startRedis(): Promise<string> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'corral-redis-'));
  redis = spawn(REDIS!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const end = Date.now() + 10_000;
  while (!(await pong(port))) {
    if (redis.exitCode !== null) throw new Error(`redis-server exited with ${redis.exitCode}`);
    if (Date.now() > end) throw new Error('redis-server does not answer PING within 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return `redis://127.0.0.1:${port}`;
}

interface Emitted {
  pid: number;
  tag: string;
  err: string | null;
  replies: Array<{ pid: number; tag: string }>;
}

async function host(tag: string, url: string): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', app('socketio-cluster.mjs')], {
    env: { SIO_ADAPTER: 'redis', REDIS_URL: url, SIO_TAG: tag },
  });
  started.push(c);
  await c.waitReady();
  return { c, port };
}

async function json<T>(port: number, path: string): Promise<T> {
  const r = await get({ port, path });
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

describe('Socket.IO across hosts: the Redis adapter', { timeout: 60_000, skip: REDIS ? false : 'redis-server is not installed (scripts/setup installs it)' }, () => {
  test('two corral instances: a serverSideEmit from a worker of one reaches every worker of both', async () => {
    const url = await startRedis();
    const [a, b] = await Promise.all([host('host-a', url), host('host-b', url)]);
    const pids = { a: await a.c.workerPids(), b: await b.c.workerPids() };
    assert.equal(pids.a.length + pids.b.length, 4);
    const all = [...pids.a, ...pids.b];
    // Every worker of both instances: serverCount counts the subscribers in Redis.
    const end = Date.now() + 10_000;
    for (;;) {
      const { count } = await json<{ count: number }>(a.port, '/count');
      if (count === 4) break;
      if (Date.now() > end) throw new Error(`serverCount is ${count}, not 4`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const [from, port] of [['host-a', a.port], ['host-b', b.port]] as const) {
      const e = await json<Emitted>(port, '/emit');
      assert.equal(e.tag, from);
      assert.equal(e.err, null, e.err ?? '');
      assert.deepEqual(e.replies.map((r) => r.pid).sort(), all.filter((p) => p !== e.pid).sort(), `${from}'s emit is answered by the three other workers`);
      const other = from === 'host-a' ? 'host-b' : 'host-a';
      assert.equal(e.replies.filter((r) => r.tag === other).length, 2, `both workers of ${other} answered`);
      // And the other host heard it.
      const heard = await json<{ heard: number[] }>(from === 'host-a' ? b.port : a.port, '/heard');
      assert.ok(heard.heard.includes(e.pid));
    }
    a.c.signal('SIGQUIT');
    b.c.signal('SIGQUIT');
    assert.equal((await a.c.waitExit()).code, 0);
    assert.equal((await b.c.waitExit()).code, 0);
  });
});
