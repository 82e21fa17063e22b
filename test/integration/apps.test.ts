import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

async function serveOnce(ref: string, env: NodeJS.ProcessEnv = {}): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', ref], { env });
  started.push(c);
  await c.waitReady();
  return { c, port };
}

describe('app shapes', () => {
  for (const [file, framework] of [
    ['express-app.mjs', 'express'],
    ['koa-app.mjs', 'koa'],
    ['fastify-app.mjs', 'fastify'],
    ['hono-app.mjs', 'hono'],
    ['fetch-fn.mjs', 'fetch'],
    ['named.cjs:handler', 'cjs'],
  ] as const) {
    test(`${framework} app served as it is`, async () => {
      const { c, port } = await serveOnce(app(file));
      const r = await get({ port });
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body) as { framework: string; pid: number };
      assert.equal(body.framework, framework);
      assert.ok((await c.workerPids()).includes(body.pid));
      c.signal('SIGQUIT');
      assert.equal((await c.waitExit()).code, 0);
    });
  }

  test('hono app receives request bodies through the fetch adapter', async () => {
    const { c, port } = await serveOnce(app('hono-app.mjs'));
    const r = await get({ port, path: '/echo', method: 'POST', body: 'ping body', headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ping body');
    c.signal('SIGQUIT');
    await c.waitExit();
  });

  test('a factory is called once, init runs before ready, close runs at drain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-hooks-'));
    const hookLog = join(dir, 'hooks.log');
    appendFileSync(hookLog, '');
    const { c, port } = await serveOnce(app('factory.mjs'), { HOOK_LOG: hookLog });
    const r = await get({ port });
    const body = JSON.parse(r.body) as { framework: string; ready: boolean; pid: number };
    assert.equal(body.framework, 'factory');
    assert.equal(body.ready, true, 'init finished before the first request');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    assert.equal(readFileSync(hookLog, 'utf8'), `close ${body.pid}\n`);
  });

  test('a missing named export exits 4 and lists the exports', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', app('named.cjs:hndler')]);
    started.push(c);
    const exit = await c.waitExit();
    assert.equal(exit.code, 4);
    assert.match(c.output, /has no export 'hndler' \(it exports: .*handler/);
    assert.match(c.output, /E_APP_EXPORT: .*did you mean \S+named\.cjs:handler\? \(handler is a function with 2 parameters\)/);
  });

  for (const [file, pattern] of [
    ['express-listens.mjs', /E_APP_LISTENING: app module \S+express-listens\.mjs: default export is an app the module made listen on 127\.0\.0\.1 \(a random port\) itself while it loaded: corral owns the sockets/],
    ['keys-object.mjs', /E_APP_SHAPE: app module \S+keys-object\.mjs: default export is an object with keys \[app\(\), port\]; corral serves .*; did you mean \S+keys-object\.mjs:app\? \(its 'app' is a function with 3 parameters\)/],
    ['no-default.mjs', /E_APP_EXPORT: app module \S+no-default\.mjs has no default export \(it exports: helper, port\); corral serves a \(req, res\) handler/],
  ] as const) {
    test(`${file}: exit 4 with a code and a line that says what was found and what to export`, async () => {
      const port = await freePort();
      const r = await runCli(['--bind', `127.0.0.1:${port}`, '--workers', '1', app(file)]);
      assert.equal(r.code, 4, r.output);
      assert.match(r.output, pattern);
    });
  }

  test('an app that also listens on a fixed port itself is served, with a warning that names the port', async () => {
    const side = await freePort();
    const { c, port } = await serveOnce(app('koa-listens.mjs'), { SIDE_PORT: String(side) });
    assert.equal((await get({ port })).body, 'koa');
    const line = await c.waitForLine(/"level":"warn".*made a server listen/);
    assert.match(line, new RegExp(`koa-listens\\.mjs made a server listen on 127\\.0\\.0\\.1:${side} itself while it loaded: every worker does the same, and only one can bind it`));
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('the app named from inside an exported object, as the error suggests, is served', async () => {
    const { c, port } = await serveOnce(`${app('keys-object.mjs')}:app`);
    assert.equal((await get({ port })).body, 'hello');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });
});
