/**
 * Reload, stop and restart under load against a real systemd, with the app installed by
 * scripts/install: `systemctl reload` returns once the new generation serves and no request
 * fails; a broken app leaves the old one serving; `systemctl stop` finishes in-flight
 * requests; `systemctl restart` through the socket unit refuses no connection.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import {
  cannotRun, get, installApp, progress, setVersion, sleep, startLoad, useSandbox, waitFor,
  type LoadResult, type Sandbox,
} from './harness.js';

const skip = cannotRun();
const URL = 'http://127.0.0.1:8000';

function assertClean(r: LoadResult, what: string): void {
  assert.equal(r.failed, 0, `${what}: ${r.failed} of ${r.total} requests failed: ${JSON.stringify(r.errors)}\n${r.samples.join('\n')}`);
  assert.deepEqual(Object.keys(r.statuses), ['200'], `${what}: statuses ${JSON.stringify(r.statuses)}`);
}

/** Starts a connection-churn load and a keep-alive load that run until `stop()`. */
async function backgroundLoad(sb: Sandbox, tag: string) {
  const stopFile = join(sb.dir, `${tag}.stop`);
  const progressFile = join(sb.dir, `${tag}.progress`);
  const common = { url: URL, requests: 500_000, seconds: 150, stopFile };
  const churn = startLoad(sb, { ...common, concurrency: 4, progressFile, tag: `${tag}-churn` });
  const keepAlive = startLoad(sb, { ...common, concurrency: 4, keepAlive: true, tag: `${tag}-ka` });
  await waitFor('the load to get going', () => progress(progressFile) > 200, { timeoutMs: 30_000 });
  return {
    stop: async () => {
      writeFileSync(stopFile, '');
      return { churn: await churn.result(), keepAlive: await keepAlive.result() };
    },
  };
}

describe('reload, stop and restart', { skip, timeout: 900_000 }, () => {
  const sandbox = useSandbox(import.meta.url);

  before(async () => {
    const sb = sandbox();
    await installApp(sb, { name: 'hello', port: 8000, workers: 2, version: 'v1' });
    await sb.ok(['systemctl', 'start', 'corral@hello.service']);
  });

  test('ten reloads in a row under load: each returns once the new code serves; no request fails', async (t) => {
    const sb = sandbox();
    const pid = await sb.prop('corral@hello.service', 'MainPID');
    const load = await backgroundLoad(sb, 'reload');
    for (let i = 2; i <= 11; i++) {
      await setVersion(sb, 'hello', `v${i}`);
      const r = await sb.exec(['systemctl', 'reload', 'corral@hello.service']);
      assert.equal(r.code, 0, `reload ${i - 1}: ${r.stderr}`);
      // New connections right after `systemctl reload` returned: the new code answers.
      for (let k = 0; k < 3; k++) {
        const res = await get(sb, { url: URL, path: `/?rid=after-reload-${i}-${k}` });
        assert.match(res.body, new RegExp(`^hello v${i} `), `after reload ${i - 1}`);
      }
    }
    await sleep(1000);
    const { churn, keepAlive } = await load.stop();
    t.diagnostic(`new connection per request: ${churn.ok}/${churn.total}; keep-alive: ${keepAlive.ok}/${keepAlive.total}`);
    assertClean(churn, 'new connection per request');
    assertClean(keepAlive, 'keep-alive');
    const total = churn.total + keepAlive.total;
    assert.ok(total >= 3000, `only ${total} requests were made`);
    assert.equal(await sb.prop('corral@hello.service', 'MainPID'), pid, 'the master never changes');
    assert.equal(await sb.prop('corral@hello.service', 'NRestarts'), '0');
    assert.match(await sb.prop('corral@hello.service', 'StatusText'), /generation 11/);
  });

  test('a reload with a broken app fails, and the old code keeps serving', async () => {
    const sb = sandbox();
    await sb.sh(`
      cp /srv/hello/app.mjs /srv/hello/app.mjs.good
      echo 'throw new Error("broken on purpose")' > /srv/hello/app.mjs
    `);
    try {
      const load = await backgroundLoad(sb, 'broken');
      const r = await sb.exec(['systemctl', 'reload', 'corral@hello.service']);
      assert.notEqual(r.code, 0, '`systemctl reload` reports the failure');
      assert.equal(await sb.prop('corral@hello.service', 'ActiveState'), 'active');
      assert.match((await get(sb, { url: URL })).body, /^hello v11 /, 'the old generation serves');
      assert.match(await sb.prop('corral@hello.service', 'StatusText'), /fail/i, 'STATUS says the reload failed');
      // The failed generation is not retried behind the operator's back.
      await sleep(3000);
      assert.match((await get(sb, { url: URL })).body, /^hello v11 /);
      const { churn, keepAlive } = await load.stop();
      assertClean(churn, 'new connection per request');
      assertClean(keepAlive, 'keep-alive');
      const why = await sb.journal('corral@hello.service', '-o', 'cat', '--grep', 'broken on purpose');
      assert.match(why, /reload .*failed/, 'the log says why');
      const cgroup = await sb.prop('corral@hello.service', 'ControlGroup');
      const procs = (await sb.ok(['cat', `/sys/fs/cgroup${cgroup}/cgroup.procs`])).trim().split('\n');
      assert.equal(procs.length, 3, `the master and the two old workers only: ${procs.join(' ')}`);
    } finally {
      await sb.sh('mv /srv/hello/app.mjs.good /srv/hello/app.mjs');
    }
    await setVersion(sb, 'hello', 'v12');
    await sb.ok(['systemctl', 'reload', 'corral@hello.service']);
    assert.match((await get(sb, { url: URL })).body, /^hello v12 /);
  });

  test('systemctl stop lets every in-flight request finish', async () => {
    const sb = sandbox();
    const slow = startLoad(sb, { url: URL, path: '/slow?ms=3000', concurrency: 6, requests: 6, seconds: 60, tag: 'slow' });
    // The six requests are being served once their connections are established on the server side.
    await waitFor('the six slow requests to connect', async () => {
      const out = await sb.ok(['ss', '-Htn', 'state', 'established', '( sport = :8000 )']);
      return out.trim().split('\n').filter(Boolean).length >= 6;
    }, { timeoutMs: 30_000 });
    await sleep(200); // and read by the workers
    const t0 = Date.now();
    await sb.ok(['systemctl', 'stop', 'corral@hello.service']);
    const took = Date.now() - t0;
    const r = await slow.result();
    assertClean(r, 'slow requests');
    assert.equal(r.ok, 6);
    assert.ok(took >= 1500, `stop returned after ${took} ms, before the requests could finish`);
    assert.equal(await sb.prop('corral@hello.service', 'Result'), 'success');
    assert.equal(await sb.prop('corral@hello.service', 'ExecMainStatus'), '0');
  });

  test('systemctl restart under load: the socket unit refuses no connection', async (t) => {
    const sb = sandbox();
    await sb.ok(['systemctl', 'start', 'corral@hello.service']);
    const pid = await sb.prop('corral@hello.service', 'MainPID');
    const load = await backgroundLoad(sb, 'restart');
    await sb.ok(['systemctl', 'restart', 'corral@hello.service']);
    await sleep(1500);
    const { churn, keepAlive } = await load.stop();
    t.diagnostic(`new connection per request: ${churn.ok}/${churn.total}; keep-alive: ${keepAlive.ok}/${keepAlive.total}`);
    assert.notEqual(await sb.prop('corral@hello.service', 'MainPID'), pid, 'a new master');
    assertClean(churn, 'new connection per request');
    assertClean(keepAlive, 'keep-alive');
  });
});
