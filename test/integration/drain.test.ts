import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, serveHello } from '../helpers/corral.js';
import { get, held } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';
import { alive } from '../helpers/proc.js';

const started: Corral[] = [];
const clients: Socket[] = [];
after(() => {
  clients.forEach((s) => s.destroy());
  started.forEach((c) => c.kill());
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A client that makes one keep-alive request, reads the answer, and then neither sends nor
 * closes: it ignores the server's FIN for as long as the test runs.
 */
async function silentClient(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  clients.push(s);
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n'));
    s.once('data', () => resolve());
    s.once('error', reject);
  });
  // 'end' from the server is ignored: allowHalfOpen keeps our side open
  return s;
}

async function waitDead(pids: number[], ms: number): Promise<number> {
  const t0 = Date.now();
  while (pids.some(alive) && Date.now() - t0 < ms) await sleep(25);
  return Date.now() - t0;
}

describe('drains that no client can hold', () => {
  test('SIGTERM with idle clients that never close: exit within seconds, nobody killed', async () => {
    const { c, port } = await serveHello(started, 2);
    for (let i = 0; i < 4; i++) await silentClient(port);
    await sleep(1200); // idle for longer than the drain's idle grace
    const t0 = Date.now();
    c.signal('SIGTERM');
    const exit = await c.waitExit(15_000);
    assert.equal(exit.code, 0);
    const took = Date.now() - t0;
    assert.ok(took < 6000, `drain took ${took} ms with graceful-timeout 30 s`);
    assert.doesNotMatch(c.output, /still running .* killing it/);
  });

  test('a draining worker exits about 2 s after its last in-flight request, whatever idle clients do', async () => {
    const { c, port } = await serveHello(started, 1);
    await silentClient(port);
    const workers = await c.workerPids();
    const slow = await held({ port, path: '/slow?ms=1500&flush=1', timeoutMs: 15_000 });
    c.signal('SIGQUIT');
    const reply = await slow.done;
    const answered = Date.now();
    assert.equal(reply.status, 200, 'the in-flight request finished');
    await waitDead(workers, 15_000);
    const after = Date.now() - answered;
    assert.ok(after < 4000, `worker exited ${after} ms after its last request`);
    assert.equal((await c.waitExit()).code, 0);
  });

  for (const how of ['HUP', 'TTOU', 'max-requests'] as const) {
    test(`${how}: a worker with a silent client is retired without waiting for graceful-timeout`, async () => {
      const extra = how === 'max-requests' ? ['--max-requests', '3'] : [];
      const { c, port } = await serveHello(started, how === 'TTOU' ? 2 : 1, extra);
      const before = await c.workerPids();
      for (let i = 0; i < 2; i++) await silentClient(port);
      if (how === 'HUP') c.signal('SIGHUP');
      else if (how === 'TTOU') c.signal('SIGTTOU');
      else for (let i = 0; i < 3; i++) await get({ port });
      const t0 = Date.now();
      // The retired worker is one of those that held the silent clients.
      const retired = await c.waitForLine(/worker \d+ \(gen \d+ #\d+\) stopped \(/, 15_000);
      const took = Date.now() - t0;
      const pid = Number(/worker (\d+)/.exec(retired)![1]);
      assert.ok(before.includes(pid), `${retired} is one of ${before.join(', ')}`);
      assert.ok(took < 8000, `retired after ${took} ms (graceful-timeout is 30 s)`);
      assert.doesNotMatch(c.output, /still running .* killing it/);
      c.signal('SIGQUIT');
      assert.equal((await c.waitExit()).code, 0);
    });
  }
});

describe('workers never outlive their master', () => {
  test('after kill -9 of the master, workers finish in-flight requests, log them, and exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-orphan-'));
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--graceful-timeout', '5', '--access-log', join(dir, 'access.log'), app('hello.mjs')]);
    started.push(c);
    await c.waitReady();
    const workers = await c.workerPids();
    assert.equal(workers.length, 2);
    for (let i = 0; i < 2; i++) await silentClient(port);
    const slow = await held({ port, path: '/slow?ms=1500&flush=1', headers: { 'x-request-id': 'in-flight-at-master-death' }, timeoutMs: 15_000 });
    process.kill(c.pid, 'SIGKILL');
    const reply = await slow.done;
    assert.equal(reply.status, 200, 'the request in flight when the master died was answered');
    const took = await waitDead(workers, 15_000);
    assert.deepEqual(workers.filter(alive), [], 'every worker exited');
    assert.ok(took < 10_000, `workers exited ${took} ms after the master died (graceful-timeout 5 s)`);
    const lines = readFileSync(join(dir, 'access.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { request_id: string; status: number });
    const line = lines.find((l) => l.request_id === 'in-flight-at-master-death');
    assert.ok(line, 'the request finished after the master died has its access line');
    assert.equal(line.status, 200);
  });

  test('a worker still busy graceful-timeout after its master died exits anyway', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--graceful-timeout', '1', '--access-log', 'off', app('hello.mjs')]);
    started.push(c);
    await c.waitReady();
    const workers = await c.workerPids();
    const slow = (await held({ port, path: '/slow?ms=20000&flush=1', timeoutMs: 25_000 })).done.catch((e: Error) => e);
    process.kill(c.pid, 'SIGKILL');
    const took = await waitDead(workers, 15_000);
    assert.deepEqual(workers.filter(alive), [], 'the worker exited');
    assert.ok(took < 8000, `exited ${took} ms after the master died (graceful-timeout 1 s, request 20 s)`);
    assert.ok((await slow) instanceof Error, 'the overlong request was cut');
  });
});

const isRoot = process.getuid?.() === 0;

describe('a full disk', () => {
  test('after ENOSPC, the line cut at the error is not glued to the first line written after recovery', { skip: isRoot ? false : 'needs root to mount a small tmpfs' }, async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'corral-enospc-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    try {
      const log = join(mnt, 'access.log');
      const port = await freePort();
      const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', log, '--log-write-error-interval', '1', app('hello.mjs')]);
      started.push(c);
      await c.waitReady();
      for (let i = 0; i < 3; i++) await get({ port, headers: { 'x-request-id': `before-${i}` } });
      // Fill the file system: the log's last page still has room, so a later write is cut short.
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
      } catch {
        // dd stops with ENOSPC: that is the point
      }
      for (let i = 0; i < 40; i++) await get({ port, headers: { 'x-request-id': `full-${i}-${'x'.repeat(150)}` } });
      await c.waitForLine(/cannot write access log/, 10_000);
      rmSync(join(mnt, 'filler'));
      await sleep(1500); // past log-write-error-interval: the writer tries again
      for (let i = 0; i < 5; i++) await get({ port, headers: { 'x-request-id': `after-${i}` } });
      await c.waitForLine(/writable again/, 10_000);
      c.signal('SIGQUIT');
      assert.equal((await c.waitExit()).code, 0);
      const text = readFileSync(log, 'utf8');
      assert.ok(text.endsWith('\n'));
      const lines = text.split('\n').filter(Boolean);
      const unparsable = lines.filter((l) => {
        try {
          JSON.parse(l);
          return false;
        } catch {
          return true;
        }
      });
      assert.ok(unparsable.length <= 1, `at most the one line cut by the full disk is partial: ${unparsable.join('\n')}`);
      assert.ok(unparsable.every((l) => l.startsWith('{"time":"') && !l.includes('after-')), 'the cut line stands alone');
      const ids = lines.filter((l) => !unparsable.includes(l)).map((l) => (JSON.parse(l) as { request_id: string }).request_id);
      assert.deepEqual(ids.filter((id) => id.startsWith('after-')), ['after-0', 'after-1', 'after-2', 'after-3', 'after-4'], 'every line after recovery is whole');
      assert.ok(ids.includes('before-2'));
      assert.ok(unparsable.length === 1 || ids.some((id) => id.startsWith('full-')), 'the disk filled while lines were written');
    } finally {
      execFileSync('umount', ['-l', mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});
