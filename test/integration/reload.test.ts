import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get, load } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

/** A copy of the versioned app in a temp dir, so the test can change its code. */
function appDir(version: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'corral-reload-'));
  copyFileSync(app('versioned.mjs'), join(dir, 'app.mjs'));
  writeFileSync(join(dir, 'VERSION'), version);
  return { dir, file: join(dir, 'app.mjs') };
}

/** Two workers serving the versioned app (version `version`) from a temp dir. */
async function serveVersioned(version: string): Promise<{ dir: string; file: string; port: number; c: Corral }> {
  const { dir, file } = appDir(version);
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', file]);
  started.push(c);
  await c.waitReady();
  return { dir, file, port, c };
}

describe('reload (HUP)', () => {
  test('HUP under load: zero failed requests over keep-alive and new connections; new code serves after', async () => {
    const { dir, port, c } = await serveVersioned('v1');
    const keepAlive = load({ port, total: 4000, concurrency: 16, keepAlive: true, maxMs: 60_000 });
    const churn = load({ port, total: 2000, concurrency: 8, keepAlive: false, maxMs: 60_000 });
    // three reloads while the load runs; the last one brings v2
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 300));
      if (i === 2) writeFileSync(join(dir, 'VERSION'), 'v2');
      const r = await runCli(['reload', '--wait', String(c.pid)]);
      assert.equal(r.code, 0, r.output);
    }
    const [ka, ch] = await Promise.all([keepAlive, churn]);
    assert.equal(ka.sent + ch.sent, 6000, 'the whole bounded load ran');
    assert.deepEqual({ failed: ka.failed, errors: ka.errors }, { failed: 0, errors: [] }, 'keep-alive: no failures');
    assert.deepEqual({ failed: ch.failed, errors: ch.errors }, { failed: 0, errors: [] }, 'new connections: no failures');
    for (let i = 0; i < 10; i++) assert.match((await get({ port })).body, /^v2 /);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('HUP with a broken app: old workers keep serving, the reload is reported failed', async () => {
    const { dir, file, port, c } = await serveVersioned('v1');
    const before = await c.workerPids();
    writeFileSync(file, 'export default syntax error here');
    const r = await runCli(['reload', '--wait', String(c.pid)]);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /E_RELOAD_FAILED: reload of \d+ failed: .*SyntaxError/);
    await c.waitForLine(/reload #1 failed, previous generation keeps serving/);
    // the new generation's workers that did start are being stopped; the old ones stay
    const end = Date.now() + 10_000;
    while ((await c.workerPids()).length > before.length && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual((await c.workerPids()).sort(), before.sort(), 'the old workers are still the ones running');
    for (let i = 0; i < 10; i++) assert.match((await get({ port })).body, /^v1 /);
    // fixing the code and reloading again works
    copyFileSync(app('versioned.mjs'), file);
    writeFileSync(join(dir, 'VERSION'), 'v3');
    assert.equal((await runCli(['reload', '--wait', String(c.pid)])).code, 0);
    assert.match((await get({ port })).body, /^v3 /);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('HUP re-reads the config file and .env; invalid config fails the reload, not the server', async () => {
    const { dir, file } = appDir('v1');
    const port = await freePort();
    writeFileSync(join(dir, 'corral.config.json'), JSON.stringify({ workers: 1, accessLog: 'off', bind: [`127.0.0.1:${port}`] }));
    writeFileSync(join(dir, '.env'), 'GREETING=one\n');
    const c = new Corral([file], { cwd: dir });
    started.push(c);
    await c.waitReady();
    assert.equal((await c.workerPids()).length, 1);
    assert.match((await get({ port })).body, / one$/);
    writeFileSync(join(dir, 'corral.config.json'), JSON.stringify({ workers: 3, accessLog: 'off', bind: [`127.0.0.1:${port}`] }));
    writeFileSync(join(dir, '.env'), 'GREETING=two\n');
    assert.equal((await runCli(['reload', '--wait', String(c.pid)])).code, 0);
    await c.waitForLine(/generation 1 .*stopped|worker \d+ \(gen 1 #1\) stopped/);
    assert.equal((await c.workerPids()).length, 3, 'the new worker count applies');
    assert.match((await get({ port })).body, / two$/, 'the new .env applies');
    writeFileSync(join(dir, 'corral.config.json'), JSON.stringify({ workers: 'many' }));
    const bad = await runCli(['reload', '--wait', String(c.pid)]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.output, /configuration invalid: workers \(from config file .*\): "many" is not valid/);
    assert.equal((await get({ port })).status, 200);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('reload --wait on a PID that is not a corral master fails clearly', async () => {
    const r = await runCli(['reload', '--wait', String(process.pid)]);
    assert.equal(r.code, 1);
    assert.match(r.output, /E_RELOAD_TARGET: PID \d+ has no corral control socket/);
  });
});
