import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { io as connect, type Socket } from 'socket.io-client';
import { Corral } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { REDIS_SERVER, Redis } from '../helpers/redis.js';

// Socket.IO clients on several corral workers, as Socket.IO's docs show it: the app attaches
// its Server to the worker's servers in init() and uses @socket.io/cluster-adapter; clients
// connect over WebSocket only (a WebSocket is one connection, so one worker for its life).

const started: Corral[] = [];
const clients: Socket[] = [];
let redis: Redis | undefined;
after(async () => {
  clients.forEach((s) => s.close());
  started.forEach((c) => c.kill());
  await redis?.stop();
});

async function serve(workers: number, env: NodeJS.ProcessEnv): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', String(workers), '--access-log', 'off', app('socketio-cluster.mjs')], {
    env: { SIO_ATTACH: 'servers', ...env },
  });
  started.push(c);
  await c.waitReady();
  return { c, port };
}

interface Client {
  socket: Socket;
  pid: number;
  news: Array<{ from: number; n: number }>;
}

/** A client over WebSocket only; resolves with the pid of the worker that took it. */
function client(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 5000 });
    clients.push(socket);
    const news: Client['news'] = [];
    socket.on('news', (m: { from: number; n: number }) => news.push(m));
    socket.on('ask', (_from: number, ack: (id: string) => void) => ack(socket.id!));
    socket.once('worker', (pid: number) => resolve({ socket, pid, news }));
    socket.once('connect_error', reject);
  });
}

async function json<T>(port: number, path: string): Promise<T> {
  const r = await get({ port, path });
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Socket.IO clients across corral workers', { timeout: 90_000 }, () => {
  for (const workers of [2, 3]) {
    test(`${workers} workers, clients over WebSocket on each: io.emit from any worker reaches every client of every worker, and their acknowledgements come back`, async () => {
      const { c, port } = await serve(workers, {});
      const pids = await c.workerPids();
      // Connect until every worker has clients (the kernel chooses; bounded).
      const mine: Client[] = [];
      for (let i = 0; i < 60 && new Set(mine.map((m) => m.pid)).size < workers; i++) mine.push(await client(port));
      assert.deepEqual([...new Set(mine.map((m) => m.pid))].sort(), [...pids].sort(), `clients on every worker (${mine.length} connected)`);
      await until('every adapter knows every worker', async () => {
        for (let i = 0; i < 10; i++) if ((await json<{ count: number }>(port, '/count')).count !== workers) return false;
        return true;
      });
      // Broadcast from each worker in turn (new connections until each has).
      const from = new Set<number>();
      for (let n = 1; n <= 200 && from.size < workers; n++) {
        const { pid } = await json<{ pid: number }>(port, `/broadcast?n=${n}`);
        from.add(pid);
        await until(`broadcast #${n} from ${pid} reaches all ${mine.length} clients`, () => mine.every((m) => m.news.some((x) => x.n === n && x.from === pid)));
      }
      assert.equal(from.size, workers, 'every worker broadcast once at least');
      // Acknowledgements from clients of other workers come back to the asking worker alone.
      const asked = new Set<number>();
      for (let i = 0; i < 200 && asked.size < workers; i++) {
        const r = await json<{ pid: number; err: string | null; answers: string[] }>(port, '/ask');
        asked.add(r.pid);
        assert.equal(r.err, null, `worker ${r.pid}: ${r.err}`);
        assert.deepEqual([...r.answers].sort(), mine.map((m) => m.socket.id!).sort(), `worker ${r.pid} hears every client`);
      }
      assert.ok(mine.every((m) => m.socket.connected && m.socket.io.engine.transport.name === 'websocket'));
      for (const m of mine) m.socket.close();
      c.signal('SIGQUIT');
      assert.equal((await c.waitExit()).code, 0);
    });
  }

  test('two corral instances with the Redis adapter: io.emit on one reaches the clients of both', { skip: REDIS_SERVER ? false : 'redis-server is not installed (scripts/setup installs it)' }, async () => {
    redis = await Redis.start();
    const env = { SIO_ADAPTER: 'redis', REDIS_URL: redis.url };
    const [a, b] = await Promise.all([serve(2, { ...env, SIO_TAG: 'host-a' }), serve(2, { ...env, SIO_TAG: 'host-b' })]);
    const onA = [await client(a.port), await client(a.port)];
    const onB = [await client(b.port), await client(b.port)];
    const all = [...onA, ...onB];
    await until('every worker of both instances subscribed', async () => (await json<{ count: number }>(a.port, '/count')).count === 4);
    for (const [n, port] of [[1, a.port], [2, b.port]] as const) {
      const { pid } = await json<{ pid: number }>(port, `/broadcast?n=${n}`);
      await until(`broadcast #${n} reaches the clients of both instances`, () => all.every((m) => m.news.some((x) => x.n === n && x.from === pid)));
    }
    for (const m of all) m.socket.close();
    a.c.signal('SIGQUIT');
    b.c.signal('SIGQUIT');
    assert.equal((await a.c.waitExit()).code, 0);
    assert.equal((await b.c.waitExit()).code, 0);
  });
});
