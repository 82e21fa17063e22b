import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { REDIS_SERVER, Redis } from '../helpers/redis.js';

// Two corral instances, as two hosts would run them (two masters, two ports), whose app uses
// @socket.io/redis-adapter with the `redis` client, against Debian's redis-server started
// here as a plain process on a loopback port.

const started: Corral[] = [];
let redis: Redis | undefined;
after(async () => {
  started.forEach((c) => c.kill());
  await redis?.stop();
});

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

describe('Socket.IO across hosts: the Redis adapter', { timeout: 60_000, skip: REDIS_SERVER ? false : 'redis-server is not installed (scripts/setup installs it)' }, () => {
  test('two corral instances: a serverSideEmit from a worker of one reaches every worker of both', async () => {
    redis = await Redis.start();
    const { url } = redis;
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
