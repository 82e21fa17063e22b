import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/resolve.js';
import { CorralError } from '../../src/errors.js';
import { startMaster } from '../helpers/fake-runtime.js';
import type { Listener } from '../../src/listeners/acquire.js';
import { compileCacheDir, workerSpec, type SpawnContext } from '../../src/master/spawn.js';
import { cacheDirProblem } from '../../src/worker/compile-cache.js';
import { warmUp, warmupBudgetMs, warmupServer, WarmupError, WARMUP_HEADER } from '../../src/worker/warmup.js';

async function rejects78(env: NodeJS.ProcessEnv, re: RegExp): Promise<void> {
  await assert.rejects(resolveConfig({ cli: { app: 'app.mjs' }, env, cwd: '/nonexistent' }), (err: unknown) => {
    assert.ok(err instanceof CorralError, String(err));
    assert.equal(err.code, 'E_CONFIG_VALUE');
    assert.equal(err.exitCode, 78);
    assert.match(err.message, re);
    return true;
  });
}

async function spec(env: NodeJS.ProcessEnv, appEnv: NodeJS.ProcessEnv = {}) {
  const r = await resolveConfig({ cli: { app: 'app.mjs' }, env, cwd: '/nonexistent' });
  const listeners: Listener[] = [{ fd: 3, label: '127.0.0.1:1', names: ['127.0.0.1:1'], cleanup() {}, close() {} }];
  const ctx: SpawnContext = { config: r.config, access: undefined, gen: 1, slot: 1, listeners, env: appEnv, cwd: '/srv/app' };
  return workerSpec(ctx);
}

describe('warm-up settings', () => {
  test('paths from a comma list in the environment, the count, and what the worker is told', async () => {
    const s = await spec({ CORRAL_WARMUP_REQUESTS: '/healthz, /products?page=1', CORRAL_WARMUP_COUNT: '20', CORRAL_BOOT_TIMEOUT: '7.5' });
    assert.deepEqual(s.warmup, { paths: ['/healthz', '/products?page=1'], count: 20, bootTimeoutMs: 7500 });
  });

  test('none by default: the worker is told nothing', async () => {
    const s = await spec({});
    assert.equal(s.warmup, undefined);
  });

  test('a path without its leading slash, a count of 0 or not a number: exit 78 naming the rule', async () => {
    await rejects78({ CORRAL_WARMUP_REQUESTS: 'healthz' }, /warmup-requests.*"healthz" is not valid: must be a path starting with \//);
    await rejects78({ CORRAL_WARMUP_COUNT: '0' }, /warmup-count.*"0" is not valid: must be a whole number from 1 to 10000/);
    await rejects78({ CORRAL_WARMUP_COUNT: 'many' }, /warmup-count.*"many" is not valid/);
  });
});

describe('compile cache directory', () => {
  test('auto: systemd\'s CacheDirectory=, then StateDirectory=, then RuntimeDirectory= (first of a list), else per user in the temp directory', () => {
    assert.equal(compileCacheDir('auto', { CACHE_DIRECTORY: '/var/cache/corral/app:/var/cache/x', STATE_DIRECTORY: '/var/lib/s', RUNTIME_DIRECTORY: '/run/r' }, '/srv'), '/var/cache/corral/app/compile-cache');
    assert.equal(compileCacheDir('auto', { STATE_DIRECTORY: '/var/lib/s', RUNTIME_DIRECTORY: '/run/r' }, '/srv'), '/var/lib/s/compile-cache');
    assert.equal(compileCacheDir('auto', { RUNTIME_DIRECTORY: '/run/corral/app' }, '/srv'), '/run/corral/app/compile-cache');
    assert.equal(compileCacheDir('auto', {}, '/srv', 1234), join(tmpdir(), 'corral-compile-cache-1234'));
  });

  test('off: none; a directory: as given, relative to the working directory', () => {
    assert.equal(compileCacheDir('off', { RUNTIME_DIRECTORY: '/run/r' }, '/srv'), undefined);
    assert.equal(compileCacheDir('cache', {}, '/srv/app'), '/srv/app/cache');
    assert.equal(compileCacheDir('/var/tmp/cc', {}, '/srv/app'), '/var/tmp/cc');
  });

  test('the worker is told the directory, or nothing when off', async () => {
    assert.equal((await spec({}, { RUNTIME_DIRECTORY: '/run/corral/a' })).compileCache, '/run/corral/a/compile-cache');
    assert.equal((await spec({ CORRAL_COMPILE_CACHE: 'off' }, { RUNTIME_DIRECTORY: '/run/corral/a' })).compileCache, undefined);
  });

  test('a directory is used only when it is this user\'s and closed to others; a missing one is made 0700', () => {
    const base = mkdtempSync(join(tmpdir(), 'corral-cc-'));
    try {
      const fresh = join(base, 'a', 'b');
      assert.equal(cacheDirProblem(fresh), undefined);
      assert.equal(statSync(fresh).mode & 0o777, 0o700);
      const open = join(base, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      assert.match(cacheDirProblem(open) ?? '', /writable by others \(mode 777\)/);
      const link = join(base, 'link');
      symlinkSync(fresh, link);
      assert.match(cacheDirProblem(link) ?? '', /not a directory/);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('warm-up budget and server', () => {
  test('what is left of boot-timeout less a margin of 10 %, at most 1 s; never negative', () => {
    assert.equal(warmupBudgetMs(60_000, 500), 58_500);
    assert.equal(warmupBudgetMs(2000, 300), 1500);
    assert.equal(warmupBudgetMs(2000, 5000), 0);
  });

  test('the first plain listener\'s server, else the first (TLS)', () => {
    assert.deepEqual(warmupServer(['a', 'b'], [{ tls: true }, {}]), { server: 'b', tls: false });
    assert.deepEqual(warmupServer(['a', 'b'], [{ tls: true }, { tls: true }]), { server: 'a', tls: true });
    assert.equal(warmupServer([], []), undefined);
  });
});

/** A server that is never listening, as a worker's is during its warm-up. */
function appServer(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers[WARMUP_HEADER]}`);
    answer(req, res);
  });
  return { server, seen };
}

describe('warm-up requests through a server that does not listen', () => {
  test('each path is requested count times, in order, marked with the header; the server never listens', async () => {
    const { server, seen } = appServer((_req, res) => res.end('ok'));
    const served = await warmUp(server, false, { paths: ['/a', '/b?x=1'], count: 2, budgetMs: 5000 });
    assert.equal(served, 4);
    assert.deepEqual(seen, ['GET /a 1', 'GET /a 1', 'GET /b?x=1 1', 'GET /b?x=1 1']);
    assert.equal(server.listening, false);
  });

  test('a redirect passes; a 404 fails, naming the path and the status', async () => {
    const { server } = appServer((req, res) => {
      res.statusCode = req.url === '/moved' ? 302 : 404;
      res.end();
    });
    assert.equal(await warmUp(server, false, { paths: ['/moved'], count: 1, budgetMs: 5000 }), 1);
    await assert.rejects(warmUp(server, false, { paths: ['/moved', '/missing'], count: 1, budgetMs: 5000 }), (err: unknown) => {
      assert.ok(err instanceof WarmupError);
      assert.equal(err.message, 'warm-up request GET /missing answered 404');
      return true;
    });
  });

  test('a broken connection fails the warm-up', async () => {
    const { server } = appServer((_req, res) => res.destroy());
    await assert.rejects(warmUp(server, false, { paths: ['/x'], count: 1, budgetMs: 5000 }), /warm-up request GET \/x failed: socket hang up/);
  });

  test('a request that never answers is bounded by the budget, naming it', async () => {
    const { server, seen } = appServer((req, res) => {
      if (req.url === '/ok') res.end();
    });
    await assert.rejects(warmUp(server, false, { paths: ['/ok', '/hang'], count: 1, budgetMs: 300 }), /warm-up request GET \/hang did not answer within the 0\.3 s boot-timeout left/);
    assert.deepEqual(seen, ['GET /ok 1', 'GET /hang 1']);
  });
});

describe('the master and a failed warm-up', () => {
  test('at start: exit 3 with E_WARMUP at once, its message as the worker said it, no retry', async () => {
    const h = await startMaster({ workers: '2' });
    const [a] = h.rt.children;
    a!.say({ t: 'boot-failed', kind: 'warmup', message: 'warm-up request GET /healthz answered 503' });
    a!.die(3, null);
    await h.rt.settle();
    const err = await h.result;
    assert.ok(err instanceof CorralError);
    assert.equal(err.code, 'E_WARMUP');
    assert.equal(err.exitCode, 3);
    assert.equal(err.message, 'warm-up request GET /healthz answered 503');
    assert.equal(h.rt.children.length, 2, 'no respawn');
  });
});
