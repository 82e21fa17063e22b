import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { io as connect } from 'socket.io-client';
import { Corral } from '../helpers/corral.js';
import { get, type Reply } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

// Socket.IO with @socket.io/cluster-adapter under the real CLI: the app creates its Server with
// `adapter: createAdapter()` and nothing else (no setupPrimary()); the master relays.

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

interface Emitted {
  pid: number;
  err: string | null;
  replies: Array<{ pid: number }>;
  ms: number;
}

async function serve(workers: number): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', String(workers), '--access-log', 'off', app('socketio-cluster.mjs')]);
  started.push(c);
  await c.waitReady();
  return { c, port };
}

async function json<T>(port: number, path: string): Promise<T> {
  const r: Reply = await get({ port, path });
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

/**
 * The adapters find each other by heartbeat, just after the workers are ready: waits until
 * every answer (a new connection each, so any worker) counts them all.
 */
async function untilAllKnown(port: number, workers: number): Promise<void> {
  const end = Date.now() + 10_000;
  let streak = 0;
  while (streak < 10) {
    const { count } = await json<{ count: number }>(port, '/count');
    streak = count === workers ? streak + 1 : 0;
    if (Date.now() > end) throw new Error(`the workers' adapters do not all know each other (last count ${count} of ${workers})`);
    if (streak === 0) await new Promise((r) => setTimeout(r, 50));
  }
}

/** serverSideEmit from every worker (new connections until each has emitted): who answered each. */
async function emitFromEach(port: number, pids: number[]): Promise<Map<number, Emitted>> {
  const seen = new Map<number, Emitted>();
  for (let i = 0; i < 200 && seen.size < pids.length; i++) {
    const e = await json<Emitted>(port, '/emit');
    seen.set(e.pid, e);
  }
  assert.equal(seen.size, pids.length, `every worker emitted (saw ${[...seen.keys()].join(', ')} of ${pids.join(', ')})`);
  return seen;
}

function assertEveryOtherAnswers(emitted: Map<number, Emitted>, pids: number[]): void {
  for (const [from, e] of emitted) {
    assert.equal(e.err, null, `worker ${from}: ${e.err}`);
    const others = pids.filter((p) => p !== from).sort();
    assert.deepEqual(e.replies.map((r) => r.pid).sort(), others, `worker ${from} is answered by every other worker, once`);
  }
}

describe('Socket.IO cluster adapter across corral workers', { timeout: 90_000 }, () => {
  for (const workers of [2, 3]) {
    test(`${workers} workers: a serverSideEmit from each worker reaches and is acknowledged by every other`, async () => {
      const { c, port } = await serve(workers);
      const pids = await c.workerPids();
      assert.equal(pids.length, workers);
      await untilAllKnown(port, workers);
      const emitted = await emitFromEach(port, pids);
      assertEveryOtherAnswers(emitted, pids);
      // What each worker received: the emitters' pids, never its own.
      for (let i = 0; i < 50; i++) {
        const { pid, heard } = await json<{ pid: number; heard: number[] }>(port, '/heard');
        assert.ok(!heard.includes(pid), 'a worker does not hear itself');
        for (const from of emitted.keys()) if (from !== pid) assert.ok(heard.includes(from), `worker ${pid} heard ${from}`);
      }
      c.signal('SIGQUIT');
      assert.equal((await c.waitExit()).code, 0);
    });
  }

  test('after a reload the new workers answer each other at once: the old ones\' adapters are closed for them', async () => {
    const { c, port } = await serve(2);
    const old = await c.workerPids();
    await untilAllKnown(port, 2);
    c.signal('SIGHUP');
    await c.waitForLine(/reload #1 done/);
    const end = Date.now() + 15_000;
    let pids = await c.workerPids();
    while (pids.length !== 2 || pids.some((p) => old.includes(p))) {
      if (Date.now() > end) throw new Error(`the old workers did not exit: ${pids.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
      pids = await c.workerPids();
    }
    // The new workers heard the old ones while booting. Without being told the old adapters
    // closed, an acknowledged serverSideEmit would wait for them until it times out (5 s).
    const emitted = await emitFromEach(port, pids);
    assertEveryOtherAnswers(emitted, pids);
    for (const e of emitted.values()) assert.ok(e.ms < 2000, `answered in ${e.ms} ms`);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('HTTP long-polling: a session\'s next request on another worker fails with "Session ID unknown"', async () => {
    const { c, port } = await serve(2);
    // The handshake: its worker stays busy for 1.5 s once it answered, so the kernel hands the
    // next connection to the other worker, as it may at any time for any connection.
    const hs = await get({ port, path: '/socket.io/?EIO=4&transport=polling&block=1500' });
    assert.equal(hs.status, 200, hs.body);
    const { sid } = JSON.parse(hs.body.slice(1)) as { sid: string };
    const owner = Number(hs.headers['x-worker-pid']);
    const next = await get({
      port, path: `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '40',
    });
    assert.notEqual(Number(next.headers['x-worker-pid']), owner, 'the other worker took the connection');
    assert.equal(next.status, 400);
    assert.deepEqual(JSON.parse(next.body), { code: 1, message: 'Session ID unknown' });
    // The worker that made the session still knows it, once it is free again.
    await new Promise((r) => setTimeout(r, 1500));
    let ok: Reply | undefined;
    for (let i = 0; i < 200 && !ok; i++) {
      const r = await get({
        port, path: `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, method: 'POST',
        headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '40',
      });
      if (Number(r.headers['x-worker-pid']) === owner) ok = r;
    }
    assert.ok(ok, 'the session\'s own worker took one of the connections');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'ok');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('socket.io-client over long-polling: connect_error, as the POST after the handshake reaches the other worker (400)', async () => {
    const { c, port } = await serve(2);
    // block: as above, each request's worker is busy for a moment after answering it.
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ['polling'], reconnection: false, query: { block: '1000' } });
    try {
      const err = await new Promise<Error & { context?: { status?: number } }>((resolve, reject) => {
        socket.once('connect', () => reject(new Error('connected: the session\'s requests all reached one worker')));
        socket.once('connect_error', resolve);
      });
      assert.equal(err.message, 'xhr post error');
      assert.equal(err.context?.status, 400);
      // The body (the test above reads it) is not always read before the client gives up.
    } finally {
      socket.close();
    }
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });
});
