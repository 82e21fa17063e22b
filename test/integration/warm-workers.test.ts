import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import * as nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

interface Seen {
  pid: number;
  seen: Array<{ url: string; warmup: boolean; ua?: string }>;
}

async function seen(port: number): Promise<Seen> {
  const r = await get({ port, path: '/seen' });
  assert.equal(r.status, 200);
  return JSON.parse(r.body) as Seen;
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'corral-warm-'));
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
}

/** The running Node line has the module compile cache (22.1 and later). */
const HAS_CACHE = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function';

describe('warm-up requests', () => {
  test('served through the app before the worker takes a connection, again by each new worker after HUP, and kept out of the access log', async () => {
    const dir = tmp();
    const port = await freePort();
    const accessLog = join(dir, 'access.log');
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', accessLog, '--warmup-requests', '/a,/b?x=1', '--warmup-count', '2', app('warmup.mjs')]);
    started.push(c);
    await c.waitReady();
    const warm = ['/a', '/a', '/b?x=1', '/b?x=1'].map((url) => ({ url, warmup: true, ua: 'corral-warmup' }));
    const first = await seen(port);
    assert.deepEqual(first.seen, [...warm, { url: '/seen', warmup: false }]);

    const r = await runCli(['reload', '--wait', String(c.pid)]);
    assert.equal(r.code, 0, r.output);
    const next = await seen(port);
    assert.notEqual(next.pid, first.pid, 'a new worker answers');
    assert.deepEqual(next.seen, [...warm, { url: '/seen', warmup: false }]);

    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    const urls = readFileSync(accessLog, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { url: string }).url);
    assert.deepEqual(urls, ['/seen', '/seen'], 'only the clients\' requests are logged');
  });

  test('they do not count towards max-requests: a limit below their number still lets the worker boot and serve that many clients', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--max-requests', '3', '--warmup-requests', '/a', '--warmup-count', '5', app('warmup.mjs')]);
    started.push(c);
    await c.waitReady();
    const first = await seen(port);
    assert.equal(first.seen.filter((r) => r.warmup).length, 5);
    for (let i = 0; i < 2; i++) assert.equal((await seen(port)).pid, first.pid, `client request ${i + 2} of 3 on the same worker`);
    let next = first;
    for (let i = 0; i < 100 && next.pid === first.pid; i++) {
      await new Promise((r) => setTimeout(r, 100));
      next = await seen(port);
    }
    assert.notEqual(next.pid, first.pid, 'replaced after its 3 clients\' requests');
    assert.equal(next.seen.filter((r) => r.warmup).length, 5, 'the replacement warmed up too');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('with TLS on every listener, they go through the TLS server (the handshake included)', async () => {
    const dir = tmp();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore', timeout: 10_000 });
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--tls-cert', cert, '--tls-key', key, '--warmup-requests', '/a', app('warmup.mjs')]);
    started.push(c);
    await c.waitReady();
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/seen', rejectUnauthorized: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text));
      }).on('error', reject).end();
    });
    assert.deepEqual((JSON.parse(body) as Seen).seen, [{ url: '/a', warmup: true, ua: 'corral-warmup' }, { url: '/seen', warmup: false }]);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('a warm-up path that answers 500 fails the start: exit 3, E_WARMUP naming the path and status', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', '--warmup-requests', '/a,/fail', app('warmup.mjs')]);
    assert.equal(r.code, 3, r.output);
    assert.match(r.output, /corral: error E_WARMUP: warm-up request GET \/fail answered 500/);
  });

  test('a warm-up path that never answers is bounded by boot-timeout: exit 3, E_WARMUP naming it', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--boot-timeout', '3', '--warmup-requests', '/hang', app('warmup.mjs')]);
    assert.equal(r.code, 3, r.output);
    assert.match(r.output, /E_WARMUP: warm-up request GET \/hang did not answer within the [\d.]+ s boot-timeout left/);
  });

  test('a reload whose warm-up fails is a failed reload: the old worker keeps serving', async () => {
    const dir = tmp();
    const config = join(dir, 'corral.config.json');
    writeFileSync(config, JSON.stringify({ warmupRequests: ['/a'] }));
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--config', config, app('warmup.mjs')]);
    started.push(c);
    await c.waitReady();
    const before = (await seen(port)).pid;
    writeFileSync(config, JSON.stringify({ warmupRequests: ['/fail'] }));
    const r = await runCli(['reload', '--wait', String(c.pid)]);
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /E_RELOAD_FAILED: .*warm-up request GET \/fail answered 500/);
    assert.equal((await seen(port)).pid, before, 'the old worker serves');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });
});

describe('compile cache', () => {
  test(`the workers fill the cache directory once ready (${HAS_CACHE ? `Node ${process.version} has the cache` : `Node ${process.version} has none: the directory is left alone`})`, async () => {
    const dir = join(tmp(), 'cc');
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', '--compile-cache', dir, app('warmup.mjs')]);
    started.push(c);
    await c.waitReady();
    assert.equal((await get({ port, path: '/a' })).status, 200);
    if (HAS_CACHE) {
      // Flushed once each worker is ready, while it still runs: not only at its exit.
      const files = filesUnder(dir);
      assert.ok(files.length >= 5, `compiled modules in ${dir}: ${files.join(', ')}`);
    } else {
      assert.equal(existsSync(dir), false, 'no directory made on a line without the cache');
    }
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('auto: compile-cache/ in RuntimeDirectory=; off: nothing is written there', async () => {
    for (const setting of ['auto', 'off']) {
      const dir = tmp();
      const port = await freePort();
      const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--compile-cache', setting, app('warmup.mjs')], { env: { RUNTIME_DIRECTORY: dir } });
      started.push(c);
      await c.waitReady();
      const written = readdirSync(dir).filter((f) => !f.endsWith('.sock'));
      if (setting === 'auto' && HAS_CACHE) {
        assert.deepEqual(written, ['compile-cache']);
        assert.ok(filesUnder(join(dir, 'compile-cache')).length > 0);
      } else {
        assert.deepEqual(written, [], `compile-cache ${setting} on Node ${process.version}`);
      }
      c.signal('SIGQUIT');
      assert.equal((await c.waitExit()).code, 0);
    }
  });
});
