import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import { Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadApp } from '../../src/worker/app-loader.js';
import { describeValue, nearestShape } from '../../src/worker/app-diagnosis.js';
import { hapiApp, hapiStarted } from '../../src/worker/hapi-adapter.js';
import { AppLoadError, type LoadedApp } from '../../src/worker/app-shape.js';
import { listenTarget, ListenWatch } from '../../src/worker/listen-watch.js';
import { APPS, app } from '../helpers/paths.js';

const hookLog = join(mkdtempSync(join(tmpdir(), 'corral-loader-')), 'hooks.log');
appendFileSync(hookLog, '');
process.env.HOOK_LOG = hookLog;

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

/** Serves a loaded app the way a worker does (its handler on a server of our own); GETs `path` twice on one connection. */
async function twoRequests(loaded: LoadedApp, path = '/'): Promise<Array<{ body: string; connection: string | undefined }>> {
  const server = createServer((req, res) => void loaded.handler(req, res));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const one = () => new Promise<{ body: string; connection: string | undefined }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (c) => (body += String(c)));
      res.on('end', () => resolve({ body, connection: res.headers.connection }));
    }).on('error', reject).end();
  });
  const out = [await one(), await one()];
  agent.destroy();
  server.close();
  return out;
}

async function refused(ref: string, code: string, re: RegExp): Promise<void> {
  await assert.rejects(loadApp(ref, APPS), (err: unknown) => {
    assert.ok(err instanceof AppLoadError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, re);
    return true;
  });
}

describe('app loader: hapi', () => {
  test('a hapi server is started without listening, keeps connections alive, and stops with its extensions at close', async () => {
    const loaded = await loadApp(app('hapi-app.mjs'), APPS);
    assert.equal(loaded.kind, 'hapi');
    const listensBefore = NetServer.prototype.listen;
    await loaded.init!({ servers: [], signal: new AbortController().signal });
    assert.equal(NetServer.prototype.listen, listensBefore, 'the listen watch is gone once loaded');
    const replies = await twoRequests(loaded);
    assert.equal((JSON.parse(replies[0]!.body) as { framework: string }).framework, 'hapi');
    assert.ok(replies.every((r) => r.connection !== 'close'), `hapi started: no Connection: close (${JSON.stringify(replies)})`);
    assert.equal(typeof loaded.upgrade?.(), 'function', 'the ws server on server.listener gets the upgrades');
    await loaded.close!(1000);
    const lines = readFileSync(hookLog, 'utf8').split('\n').filter((l) => l.endsWith(` ${process.pid}`)).map((l) => l.split(' ')[0]);
    assert.deepEqual(lines, ['onPostStart', 'onPreStop', 'onPostStop']);
  });

  for (const [file, framework, what] of [
    ['hapi-init.mjs', 'hapi-init', 'no default export, an init() that returns a hapi server: that server is the app, and init is no hook'],
    ['hapi-init.cjs', 'hapi-init-cjs', 'the same in CommonJS, where the default export is module.exports holding init'],
  ] as const) {
    test(what, async () => {
      const loaded = await loadApp(app(file), APPS);
      assert.equal(loaded.kind, 'hapi');
      await loaded.init!({ servers: [], signal: new AbortController().signal });
      assert.equal((JSON.parse((await twoRequests(loaded))[0]!.body) as { framework: string }).framework, framework);
      await loaded.close!(1000);
    });
  }
});

describe('hapi adapter', () => {
  test('a hapi server the app started with autoListen off is served; one started to listen is refused', async () => {
    const { default: Hapi } = await import('@hapi/hapi');
    const quiet = Hapi.server({ autoListen: false });
    quiet.route({ method: 'GET', path: '/', handler: () => 'quiet' });
    await quiet.start();
    assert.equal(hapiStarted(quiet as never), false);
    const served = hapiApp(quiet as never, 'app.mjs');
    await served.init!({ servers: [], signal: new AbortController().signal });
    assert.equal((await twoRequests(served))[1]!.body, 'quiet');
    await served.close!(1000);
    const loud = Hapi.server({ port: 0, host: '127.0.0.1' });
    await loud.start();
    try {
      assert.equal(hapiStarted(loud as never), true);
      await assert.rejects(Promise.resolve(hapiApp(loud as never, 'app.mjs').init!({ servers: [], signal: new AbortController().signal })), (err: unknown) => err instanceof AppLoadError && err.code === 'E_APP_LISTENING');
    } finally {
      await loud.stop({ timeout: 100 });
    }
  });
});

describe('app loader: what cannot be served, and what to do instead', () => {
  test('a value that is no app: what it is and the shapes (E_APP_SHAPE)', async () => {
    await refused(app('not-an-app.mjs'), 'E_APP_SHAPE', /default export is a number \(42\); corral serves a \(req, res\) handler, .*a hapi server/);
  });

  test('an object holding the app: its keys and the APP:EXPORT that names the app', async () => {
    await refused(app('keys-object.mjs'), 'E_APP_SHAPE', /default export is an object with keys \[app\(\), port\]; .*did you mean \S+keys-object\.mjs:app\?/);
  });

  test('no default export: what the module exports (E_APP_EXPORT); a helper function is not suggested as the app', async () => {
    await refused(app('no-default.mjs'), 'E_APP_EXPORT', /has no default export \(it exports: helper, port\); corral serves /);
    await refused(`${app('named.cjs')}:hndler`, 'E_APP_EXPORT', /has no export 'hndler' \(it exports: default, handler\); did you mean \S+named\.cjs:handler\?/);
  });

  test('a module that runs a server of its own on the side is served (only the app\'s own listen is an error)', async () => {
    const loaded = await loadApp(app('own-server.mjs'), APPS);
    assert.equal(loaded.kind, 'handler');
    assert.deepEqual(loaded.warnings, [], 'on port 0: no warning');
    await loaded.close!(1000);
  });

  test('describeValue and nearestShape name servers and promises', () => {
    const s = createServer();
    assert.equal(describeValue(s), 'a server (Server) that is not listening');
    assert.match(nearestShape(s, 'app.mjs')!, /export the request handler you pass to createServer\(\)/);
    const p = Promise.resolve();
    assert.equal(describeValue(p), 'a Promise');
    assert.match(nearestShape(p, 'app.mjs')!, /export the function that makes the app/);
    assert.equal(describeValue({ a: 1, b: () => {} }), 'an object with keys [a, b()]');
    assert.equal(describeValue(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i]))), 'an object with keys [k0, k1, k2, k3, k4, k5, k6, k7, ... 2 more]');
  });
});

describe('listen watch', () => {
  test('where a listen() call asked to listen, from its arguments', () => {
    assert.equal(listenTarget([3000]), 'on port 3000');
    assert.equal(listenTarget(['3000']), 'on port 3000');
    assert.equal(listenTarget([3000, 'localhost', () => {}]), 'on localhost:3000');
    assert.equal(listenTarget([0, '127.0.0.1']), 'on 127.0.0.1 (a random port)');
    assert.equal(listenTarget([() => {}]), 'on a random port');
    assert.equal(listenTarget([{ port: 8080, host: '::' }]), 'on :::8080');
    assert.equal(listenTarget(['/run/app.sock']), 'on /run/app.sock');
    assert.equal(listenTarget([{ path: '/run/app.sock' }]), 'on /run/app.sock');
  });

  test('records the servers that listen while it watches, lets them listen, and restores listen()', async () => {
    const original = NetServer.prototype.listen;
    const watch = new ListenWatch();
    const s = createServer();
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    watch.stop();
    assert.equal(NetServer.prototype.listen, original);
    assert.ok(s.listening, 'the call went through');
    assert.equal(watch.find((x) => x === s)?.where, 'on 127.0.0.1 (a random port)');
    assert.equal(watch.seen[0]!.fixed, false, 'port 0: each worker gets its own port');
    const later = createServer();
    servers.push(later);
    await new Promise<void>((r) => later.listen(0, '127.0.0.1', r));
    assert.equal(watch.seen.length, 1, 'nothing is recorded once stopped');
  });
});
