import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, serveHello } from '../helpers/corral.js';
import { get, load } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

const serving = (workers: number, extra: string[] = []) => serveHello(started, workers, extra);

async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('supervision', () => {
  test('a worker killed with SIGKILL is replaced, and the log hints at the OOM killer', async () => {
    const { c, port } = await serving(2);
    const [victim, survivor] = await c.workerPids();
    process.kill(victim!, 'SIGKILL');
    await until('a replacement', async () => {
      const pids = await c.workerPids();
      return pids.length === 2 && !pids.includes(victim!) && pids.includes(survivor!);
    });
    await c.waitForLine(/was killed by SIGKILL while serving \(perhaps out of memory/);
    assert.equal((await get({ port })).status, 200);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('a worker whose event loop is blocked is killed after timeout, naming the request', async () => {
    const { c, port } = await serving(2, ['--timeout', '2']);
    const [a, b] = await c.workerPids();
    // async work first (a check-in happens meanwhile), then the runaway loop
    const blocked = get({ port, path: '/block?ms=30000&after=700', timeoutMs: 20_000 }).catch((e: Error) => e);
    const line = await c.waitForLine(/silent for/, 10_000);
    assert.match(line, /worker \d+ \(gen 1 #\d\) silent for [2-4]\.\d s \(timeout 2 s: event loop blocked\?\); at its last check-in it was handling GET \/block\?ms=30000&after=700/);
    assert.ok((await blocked) instanceof Error, 'the runaway request was cut when its worker died');
    await until('the replacement', async () => {
      const pids = await c.workerPids();
      return pids.length === 2 && !(pids.includes(a!) && pids.includes(b!));
    });
    // the other worker kept serving throughout
    assert.equal((await get({ port })).status, 200);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('max-requests recycles workers under load with zero failed requests', async () => {
    const { c, port } = await serving(2, ['--max-requests', '100', '--max-requests-jitter', '20']);
    const first = await c.workerPids();
    const ka = load({ port, total: 3000, concurrency: 8, keepAlive: true, maxMs: 60_000 });
    const churn = load({ port, total: 1000, concurrency: 4, keepAlive: false, maxMs: 60_000 });
    const [r1, r2] = await Promise.all([ka, churn]);
    assert.deepEqual({ failed: r1.failed + r2.failed, errors: [...r1.errors, ...r2.errors] }, { failed: 0, errors: [] });
    const recycled = c.lines.filter((l) => /asks to be replaced \(max-requests\)/.test(l)).length;
    assert.ok(recycled >= 4, `4000 requests, ~110 per worker: expected many recycles, saw ${recycled}`);
    const now = await c.workerPids();
    assert.ok(now.every((p) => !first.includes(p)), 'the first workers are all gone');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('max-memory replaces a worker above the ceiling, starting the replacement first', async () => {
    const { c, port } = await serving(1, ['--max-memory', '160M']);
    const [fat] = await c.workerPids();
    const r = await get({ port, path: '/grow?mb=200' });
    assert.equal((JSON.parse(r.body) as { pid: number }).pid, fat);
    const line = await c.waitForLine(/memory: RSS \d+ MiB above max-memory 160 MiB; replacing it/);
    assert.doesNotMatch(line, /too low/, 'it grew; it did not start above the ceiling');
    await c.waitForLine(new RegExp(`worker ${fat} \\(gen 1 #1\\) stopped \\(replaced \\(memory`));
    const [lean] = await c.workerPids();
    assert.notEqual(lean, fat);
    assert.equal((JSON.parse((await get({ port })).body) as { pid: number }).pid, lean);
    // the fresh worker is under the ceiling and stays
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await c.workerPids(), [lean]);
    assert.equal(c.lines.filter((l) => /replacing it/.test(l)).length, 1);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('a worker whose init throws an uncaught exception is replaced, not left serving', async () => {
    const port = await freePort();
    const mark = join(mkdtempSync(join(tmpdir(), 'corral-throw-once-')), 'thrown');
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', app('throws-during-init.mjs')], { env: { THROW_ONCE: mark } });
    started.push(c);
    await c.waitForLine(/asks to be replaced \(uncaught exception\) before it was ready; killing it/);
    await c.waitReady();
    const thrower = Number(readFileSync(mark, 'utf8'));
    await until('the worker that threw is gone', async () => !(await c.workerPids()).includes(thrower));
    const r = await get({ port });
    assert.equal(r.status, 200);
    assert.notEqual(Number(r.body), thrower, 'a fresh worker serves');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('an init that throws an uncaught exception at every boot ends the start with exit 3', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', app('throws-during-init.mjs')]);
    started.push(c);
    const exit = await c.waitExit(30_000);
    assert.equal(exit.code, 3, c.output);
    assert.match(c.output, /failed to boot 3 times in a row \(last: asked to be replaced before it was ready \(uncaught exception\)\)/);
  });

  test('TTIN adds a worker and TTOU removes one', async () => {
    const { c } = await serving(2);
    c.signal('SIGTTIN');
    await until('3 workers', async () => (await c.workerPids()).length === 3);
    // signals of one kind sent back to back may merge into one (POSIX): wait between them
    c.signal('SIGTTOU');
    await until('2 workers', async () => (await c.workerPids()).length === 2);
    c.signal('SIGTTOU');
    await until('1 worker', async () => (await c.workerPids()).length === 1);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });
});
