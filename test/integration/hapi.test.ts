import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Corral, runCli } from '../helpers/corral.js';
import { get, held, load } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

const WAIT_MS = 10_000;

/** A HOOK_LOG file for the fixture, and a reader of its lines. */
function hookLog(): { path: string; lines: () => string[] } {
  const path = join(mkdtempSync(join(tmpdir(), 'corral-hapi-')), 'hooks.log');
  appendFileSync(path, '');
  return { path, lines: () => readFileSync(path, 'utf8').split('\n').filter(Boolean) };
}

async function serve(fixture: string, env: NodeJS.ProcessEnv = {}, workers = 2): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', String(workers), '--access-log', '-', app(fixture)], { env });
  started.push(c);
  await c.waitReady();
  return { c, port };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + WAIT_MS;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The access lines corral wrote for `url`. */
function accessLines(c: Corral, url: string): Array<{ status: number; pid: number }> {
  // The error log's slow-request warnings carry the url too, with a level: access lines have none.
  return c.lines.filter((l) => l.includes(`"url":${JSON.stringify(url)}`) && !l.includes('"level":'))
    .map((l) => JSON.parse(l) as { status: number; pid: number });
}

describe('hapi', () => {
  test('a hapi server as its docs build it is served by both workers, kept alive, with an access line per request', async () => {
    const { c, port } = await serve('hapi-app.mjs');
    const workers = new Set((await c.workerPids()).map(String));
    assert.equal(workers.size, 2);
    // New connections until both workers have answered (the kernel picks the worker).
    const r = await load({ port, total: 200, concurrency: 4, keepAlive: false, path: '/', keepBodies: true });
    assert.equal(r.ok, 200, JSON.stringify(r.errors));
    const pids = new Set(r.bodies.map((b) => String((JSON.parse(b) as { framework: string; pid: number }).pid)));
    assert.deepEqual([...pids].sort(), [...workers].sort(), 'both workers served');
    assert.ok(r.bodies.every((b) => (JSON.parse(b) as { framework: string }).framework === 'hapi'));
    // hapi answers "Connection: close" while not started: corral starts it (without listening).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await get({ port, agent });
    assert.notEqual(first.headers.connection, 'close');
    const echo = await get({ port, agent, path: '/echo', method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    assert.deepEqual(JSON.parse(echo.body), { a: 1 }, 'payloads reach hapi');
    agent.destroy();
    await until('access lines of every request', () => accessLines(c, '/').length >= 201);
    assert.ok(accessLines(c, '/').every((l) => l.status === 200 && workers.has(String(l.pid))));
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0, c.output);
  });

  test('server extensions: onPostStart at boot, onPreStop and onPostStop at the drain; a HUP and a QUIT lose no request in flight', async () => {
    const hooks = hookLog();
    const { c, port } = await serve('hapi-app.mjs', { HOOK_LOG: hooks.path });
    const gen1 = (await c.workerPids()).map(String).sort();
    assert.deepEqual(hooks.lines().filter((l) => l.startsWith('onPostStart')).map((l) => l.split(' ')[1]).sort(), gen1);
    // A slow request in flight across the reload.
    const slow = await slowInFlight(port, hooks);
    const reloaded = runCli(['reload', '--wait', String(c.pid)]);
    const r1 = await slow.done;
    assert.equal(r1.status, 200);
    assert.equal((JSON.parse(r1.body) as { slow: boolean }).slow, true);
    assert.equal((await reloaded).code, 0, c.output);
    await until('the old workers stopped', () => gen1.every((pid) => hooks.lines().includes(`onPostStop ${pid}`)));
    for (const pid of gen1) {
      const own = hooks.lines().filter((l) => l.endsWith(` ${pid}`)).map((l) => l.split(' ')[0]);
      assert.deepEqual(own.filter((w) => w !== 'slow-start'), ['onPostStart', 'onPreStop', 'onPostStop'], `worker ${pid}: hapi's lifecycle in order`);
    }
    // The old workers write their last heartbeat after onPostStop, then exit.
    let gen2: string[] = [];
    for (const end = Date.now() + WAIT_MS; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      gen2 = (await c.workerPids()).map(String).sort();
      if (gen2.length === 2 && !gen2.some((p) => gen1.includes(p))) break;
    }
    assert.equal(gen2.filter((p) => !gen1.includes(p)).length, 2, 'a new generation serves, the old one is gone');
    // Then one in flight across the QUIT.
    const slow2 = await slowInFlight(port, hooks);
    c.signal('SIGQUIT');
    const r2 = await slow2.done;
    assert.equal(r2.status, 200);
    assert.equal((await c.waitExit()).code, 0, c.output);
    for (const pid of gen2) assert.ok(hooks.lines().includes(`onPostStop ${pid}`), `onPostStop ran in ${pid}`);
    assert.equal(accessLines(c, '/slow?ms=1500').filter((l) => l.status === 200).length, 2, 'both slow requests logged');
  });

  test('a WebSocket server attached to server.listener gets the upgrades', async () => {
    const { c, port } = await serve('hapi-app.mjs', {}, 1);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const echo = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo')), WAIT_MS);
      ws.once('open', () => ws.send('ping'));
      ws.once('message', (m) => {
        clearTimeout(timer);
        resolve(String(m));
      });
      ws.once('error', reject);
    });
    assert.match(echo, /^hapi \d+ ping$/);
    ws.close();
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0, c.output);
  });

  test('hapi\'s testing-docs shape (no default export, init() returns the server) is served', async () => {
    const { c, port } = await serve('hapi-init.mjs', {}, 1);
    const r = await get({ port });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { framework: string }).framework, 'hapi-init');
    assert.doesNotMatch(c.output, /Server running at/, 'start() was not called');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0, c.output);
  });

  test('hapi\'s getting-started example, which starts its server itself, exits 4 with E_APP_LISTENING and what to export', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, '--workers', '1', app('hapi-listens.mjs')]);
    assert.equal(r.code, 4, r.output);
    assert.match(r.output, /E_APP_LISTENING: app module \S+hapi-listens\.mjs has no default export \(it exports: nothing\), and it made a server listen on 127\.0\.0\.1 \(a random port\) itself while it loaded: .*hapi: `export default server` without server\.start\(\)/);
  });
});

/** Sends GET /slow and resolves once the app has it in hand (the fixture notes it in HOOK_LOG). */
async function slowInFlight(port: number, hooks: { lines: () => string[] }): Promise<{ done: Promise<{ status: number; body: string }> }> {
  const before = hooks.lines().filter((l) => l.startsWith('slow-start')).length;
  const done = held({ port, path: '/slow?ms=1500' }).then((h) => h.done);
  done.catch(() => {});
  await until('the slow request reached the app', () => hooks.lines().filter((l) => l.startsWith('slow-start')).length > before);
  return { done };
}
