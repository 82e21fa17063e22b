import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Corral, serveHello } from '../helpers/corral.js';
import { get, held } from '../helpers/http.js';
import { alive } from '../helpers/proc.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

const serving = (workers: number, extra: string[] = []) => serveHello(started, workers, extra);


describe('shutdown', () => {
  for (const sig of ['SIGQUIT', 'SIGTERM'] as const) {
    test(`${sig} with 20 in-flight 2-second requests: all complete with 200, exit 0`, async () => {
      const { c, port } = await serving(2);
      const workers = await c.workerPids();
      const t0 = Date.now();
      // All 20 are in the workers (their headers came back) before the signal.
      const inflight = await Promise.all(Array.from({ length: 20 }, () => held({ port, path: '/slow?ms=2000&flush=1', timeoutMs: 15_000 })));
      c.signal(sig);
      const replies = await Promise.all(inflight.map((h) => h.done));
      assert.deepEqual(replies.map((r) => r.status), Array(20).fill(200));
      assert.ok(replies.every((r) => JSON.parse(r.body).path === '/slow'), 'every body arrived whole');
      const exit = await c.waitExit();
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(Date.now() - t0 >= 2000, 'the master waited for the requests');
      // no new connections are accepted once the drain began
      await assert.rejects(get({ port, timeoutMs: 2000 }));
      assert.ok(workers.every((p) => !alive(p)), 'no worker outlives the master');
    });
  }

  test('graceful-timeout: a worker still busy cuts its request itself just before, and the master still exits 0', async () => {
    const { c, port } = await serving(1, ['--graceful-timeout', '1']);
    const slow = (await held({ port, path: '/slow?ms=10000&flush=1', timeoutMs: 15_000 })).done.catch((e: Error) => e);
    const t0 = Date.now();
    c.signal('SIGQUIT');
    const exit = await c.waitExit(10_000);
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - t0 < 5000, 'stopped at the graceful timeout, not after the request');
    assert.ok((await slow) instanceof Error, 'the overlong request was cut');
    assert.match(c.output, /1 request\(s\) and 0 long-lived connection\(s\) still open as graceful-timeout \(1 s\) runs out; cutting them/);
    assert.doesNotMatch(c.output, /after it was told to stop/, 'the worker did not need the master\'s SIGKILL');
  });

  test('graceful-timeout: a worker whose event loop is stuck is killed by the master, which still exits 0', async () => {
    const { c, port } = await serving(1, ['--graceful-timeout', '1']);
    const blocked = get({ port, path: '/block?ms=8000&after=200', timeoutMs: 15_000 }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    c.signal('SIGQUIT');
    const exit = await c.waitExit(10_000);
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - t0 < 5000, 'killed at the graceful timeout, not after the request');
    assert.ok((await blocked) instanceof Error, 'the stuck request was cut');
    assert.match(c.output, /still running .* after it was told to stop/);
  });

  test('INT exits promptly even with requests in flight', async () => {
    const { c, port } = await serving(2);
    const slow = (await held({ port, path: '/slow?ms=10000&flush=1', timeoutMs: 15_000 })).done.catch((e: Error) => e);
    const t0 = Date.now();
    c.signal('SIGINT');
    const exit = await c.waitExit(5000);
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - t0 < 3000, `exited in ${Date.now() - t0} ms`);
    assert.ok((await slow) instanceof Error);
  });

  test('a second QUIT during a drain escalates to a fast shutdown', async () => {
    const { c, port } = await serving(1);
    const slow = (await held({ port, path: '/slow?ms=10000&flush=1', timeoutMs: 15_000 })).done.catch((e: Error) => e);
    c.signal('SIGQUIT');
    await c.waitForLine(/graceful shutdown/);
    const t0 = Date.now();
    c.signal('SIGQUIT');
    const exit = await c.waitExit(5000);
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - t0 < 3000);
    assert.match(c.output, /SIGQUIT during drain: fast shutdown/);
    assert.ok((await slow) instanceof Error);
  });
});
