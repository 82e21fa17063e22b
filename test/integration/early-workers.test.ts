import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { resolveConfig } from '../../src/config/resolve.js';
import { acquireListeners, type Listener } from '../../src/listeners/acquire.js';
import { parseBind } from '../../src/listeners/bind-spec.js';
import { EarlyWorkers } from '../../src/master/early-workers.js';
import type { MasterLogs } from '../../src/master/master-logs.js';
import type { SpawnContext } from '../../src/master/spawn.js';
import { Corral } from '../helpers/corral.js';
import { held, waitHttp } from '../helpers/http.js';
import { app, FIXTURES, ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const servers: Server[] = [];
const children: ChildProcess[] = [];
const listeners: Listener[] = [];
/** Early workers not taken (a test that failed half-way): their channels would keep this process alive. */
const pools: EarlyWorkers[] = [];
after(() => {
  for (const p of pools) p.discard();
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) s.close();
  for (const l of listeners) l.close();
});

const LOGS = { errorLog: { line() {}, captured() {} }, access: undefined, accessPrefix: '' } as unknown as MasterLogs;

/**
 * A listening socket taken as the master takes its own (listening in the kernel, never
 * accepting here): a socket this process also accepted on would take some of the test's
 * connections and never answer them.
 */
async function listener(): Promise<{ l: Listener; port: number }> {
  const port = await freePort();
  const [l] = await acquireListeners([parseBind(`127.0.0.1:${port}`)], { unixSocketMode: 0o660 });
  listeners.push(l!);
  return { l: l!, port };
}

async function base(l: Listener): Promise<Omit<SpawnContext, 'gen' | 'slot'>> {
  const r = await resolveConfig({ cli: { app: app('hello.mjs'), workers: 1, captureOutput: false }, env: {}, cwd: ROOT });
  return { config: r.config, access: undefined, listeners: [l], env: { PATH: process.env.PATH }, cwd: ROOT };
}

describe('workers started before the master', () => {
  test('taken over for the same slot and spec: what they said before is heard after, in order', async () => {
    const { l, port } = await listener();
    const ctx = await base(l);
    const early = new EarlyWorkers(ctx, 1);
    pools.push(early);
    await waitHttp(port);
    // The worker listened, then said ready: give its message time to arrive unheard.
    await new Promise((r) => setTimeout(r, 300));
    const child = early.take({ ...ctx, gen: 1, slot: 1 }, LOGS)!;
    assert.ok(child, 'taken');
    children.push(child);
    const heard: string[] = [];
    child.on('message', (m: { t: string }) => heard.push(m.t));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(heard.slice(0, 2), ['hb', 'ready'], 'the first heartbeat, then ready, as the worker sent them');
    assert.equal(early.take({ ...ctx, gen: 1, slot: 1 }, LOGS), undefined, 'taken once');
    child.kill('SIGKILL');
  });

  test('one started differently from what the master would start is killed, not taken; those never taken are killed by discard', async () => {
    const { l } = await listener();
    const ctx = await base(l);
    const early = new EarlyWorkers(ctx, 2);
    pools.push(early);
    const other = await resolveConfig({ cli: { app: app('hello.mjs'), workers: 1, timeout: 5 }, env: {}, cwd: ROOT });
    assert.equal(early.take({ ...ctx, config: other.config, gen: 1, slot: 1 }, LOGS), undefined);
    assert.equal(early.take({ ...ctx, gen: 2, slot: 2 }, LOGS), undefined, 'only generation 1 is started early');
    early.discard();
  });

  test('a stop that arrives as soon as an early worker answers is a stop: exit 0, not the master killed by the signal', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', app('hello.mjs')]);
    await waitHttp(port, 20_000);
    c.signal('SIGTERM');
    const exit = await c.waitExit();
    assert.deepEqual([exit.code, exit.signal], [0, null], c.output);
  });

  test('a stop while they serve and the master is still loading drains them: a request in flight is answered', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', app('hello.mjs')], {
      env: { NODE_OPTIONS: `--import ${pathToFileURL(join(FIXTURES, 'slow-master/register.mjs')).href}`, SLOW_MASTER_MS: '4000' },
    });
    try {
      await waitHttp(port, 20_000);
      // Its headers arrive at once: the worker has the request when the stop is sent.
      const inFlight = await held({ port, path: '/slow?ms=1500&flush=1' });
      c.signal('SIGQUIT');
      const r = await inFlight.done;
      assert.deepEqual([r.status, JSON.parse(r.body).path], [200, '/slow'], c.output);
      const exit = await c.waitExit();
      assert.deepEqual([exit.code, exit.signal], [0, null], c.output);
      assert.doesNotMatch(c.output, /ready: /, 'the stop came before the master was ready');
      assert.match(c.output, /worker \d+ \(gen 1 #1\) stopped \(shutdown \(SIGQUIT\)\)/, c.output);
    } finally {
      c.kill();
    }
  });

  test('a start that fails after they were started leaves no worker behind: exit 78, the process group empty', async () => {
    const port = await freePort();
    const busy = createServer();
    servers.push(busy);
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const metricsPort = (busy.address() as { port: number }).port;
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--metrics-bind', `127.0.0.1:${metricsPort}`, app('hello.mjs')]);
    try {
      const exit = await c.waitExit();
      assert.equal(exit.code, 78, c.output);
      assert.match(c.output, /E_BIND_IN_USE/);
      // The master started the workers in its own process group: none may be left in it.
      let left = '';
      for (let i = 0; i < 40; i++) {
        left = spawnSync('pgrep', ['-g', String(c.pid)]).stdout.toString().trim();
        if (left === '') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(left, '', 'no process of that server is left');
    } finally {
      c.kill();
    }
  });
});
