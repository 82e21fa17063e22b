import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
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
  });
});
