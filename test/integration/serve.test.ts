import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get, waitHttp } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
function start(args: string[], opts?: ConstructorParameters<typeof Corral>[1]): Corral {
  const c = new Corral(args, opts);
  started.push(c);
  return c;
}
after(() => started.forEach((c) => c.kill()));

describe('serve', () => {
  test('two workers with different PIDs serve on one port', async () => {
    const port = await freePort();
    const c = start(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', app('hello.mjs')]);
    await c.waitReady();
    const workers = await c.workerPids();
    assert.equal(workers.length, 2);
    const seen = new Set<number>();
    for (let i = 0; i < 200 && seen.size < 2; i++) {
      const r = await get({ port });
      assert.equal(r.status, 200);
      seen.add((JSON.parse(r.body) as { pid: number }).pid);
    }
    assert.deepEqual([...seen].sort(), [...workers].sort(), 'both workers answered, and only they did');
    assert.ok(!seen.has(c.pid), 'the master never serves');
    c.signal('SIGQUIT');
    assert.deepEqual(await c.waitExit(), { code: 0, signal: null });
  });

  test('PORT alone means 0.0.0.0:$PORT and WEB_CONCURRENCY sets the worker count', async () => {
    const port = await freePort();
    const c = start(['--access-log', 'off', app('hello.mjs')], { env: { PORT: String(port), WEB_CONCURRENCY: '3' } });
    await c.waitReady();
    assert.match(c.output, new RegExp(`starting: 0\\.0\\.0\\.0:${port}`));
    assert.equal((await c.workerPids()).length, 3);
    c.signal('SIGTERM');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('socket activation through systemd-socket-activate uses the passed socket', async () => {
    const port = await freePort();
    const c = start(['--workers', '2', '--access-log', 'off', '--bind', '127.0.0.1:1', app('hello.mjs')], {
      wrap: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`, '--fdname=web'],
    });
    // systemd-socket-activate waits for the first connection before it starts corral.
    const r = await waitHttp(port);
    assert.equal(r.status, 200);
    await c.waitReady();
    assert.match(c.output, /systemd:web \(fd 3\)/);
    const starting = c.lines.find((l) => l.includes('starting:'))!;
    assert.doesNotMatch(starting, /127\.0\.0\.1:1\b/, '--bind is ignored when systemd passes sockets');
    // the workers never see LISTEN_* (they would think the sockets are theirs)
    for (const pid of await c.workerPids()) {
      const { readFileSync } = await import('node:fs');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      assert.doesNotMatch(environ, /LISTEN_FDS=/);
    }
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('unix socket: a stale socket file is replaced, the mode is applied, the file removed at exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-unix-'));
    const path = join(dir, 'app.sock');
    // a stale socket: its server was SIGKILLed, so the file stayed behind
    const { spawnSync } = await import('node:child_process');
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.ok(existsSync(path));
    const c = start(['--bind', `unix:${path}`, '--unix-socket-mode', '0600', '--workers', '1', '--access-log', 'off', app('hello.mjs')]);
    await c.waitReady();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const r = await get({ socketPath: path });
    assert.equal(r.status, 200);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    assert.ok(!existsSync(path), 'socket file removed at exit');
    rmSync(dir, { recursive: true, force: true });
  });

  test('a port already in use stops the start with E_BIND_IN_USE', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const r = await runCli(['--bind', `127.0.0.1:${port}`, app('hello.mjs')]);
      assert.equal(r.code, 78);
      assert.match(r.output, /E_BIND_IN_USE: cannot bind 127\.0\.0\.1:\d+: address already in use/);
    } finally {
      blocker.close();
    }
  });

  test('an app that throws at load exits 4 with the reason', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, '--workers', '2', app('throws-at-load.mjs')]);
    assert.equal(r.code, 4);
    assert.match(r.output, /E_APP_LOAD: .*missing DATABASE_URL/);
  });

  test('an export that is not an app exits 4 naming what was expected', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, app('not-an-app.mjs')]);
    assert.equal(r.code, 4);
    assert.match(r.output, /E_APP_SHAPE: .*default export is a number \(42\); corral serves a \(req, res\) handler/);
  });

  test('workers that keep failing to boot stop the master with exit 3, not an endless loop', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, '--workers', '1', app('crash-at-init.mjs')], { timeoutMs: 30_000 });
    assert.equal(r.code, 3);
    assert.match(r.output, /E_WORKER_BOOT: workers failed to boot 3 times in a row/);
  });

  test('an init hook that throws counts as a failed boot (exit 3)', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, '--workers', '1', app('init-fails.mjs')], { timeoutMs: 30_000 });
    assert.equal(r.code, 3);
    assert.match(r.output, /cannot reach the database/);
  });
});
