/**
 * The service's life under a real systemd: socket activation, READY=1, STATUS=, journald
 * priorities, the watchdog, and a configuration error (exit 78) that must not be retried.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cannotRun, get, installApp, sleep, useSandbox, waitFor } from './harness.js';

const skip = cannotRun();
const URL = 'http://127.0.0.1:8000';
const INIT_MS = 1500;

describe('service lifecycle', { skip, timeout: 600_000 }, () => {
  const sandbox = useSandbox(import.meta.url);

  test('socket activation: the first connection starts the service', async () => {
    const sb = sandbox();
    await installApp(sb, { name: 'hello', port: 8000, workers: 2, env: { APP_INIT_MS: String(INIT_MS) } });
    assert.equal(await sb.prop('corral@hello.service', 'ActiveState'), 'inactive');
    assert.equal(await sb.prop('corral@hello.socket', 'ActiveState'), 'active');
    const t0 = Date.now();
    const r = await get(sb, { url: URL, path: '/?rid=first' });
    assert.equal(r.status, 200);
    assert.match(r.body, /^hello v1 \d+$/);
    assert.ok(Date.now() - t0 >= INIT_MS, 'the connection waited in the queue while the app booted');
    // A worker serves as soon as it is ready; READY=1 follows once every worker is.
    await waitFor('the service to be active', async () => (await sb.prop('corral@hello.service', 'ActiveState')) === 'active', { timeoutMs: 10_000 });
    const triggered = await sb.journal('corral@hello.socket');
    assert.doesNotMatch(triggered, /Failed/);
  });

  test('systemctl start returns only once every worker is ready (READY=1)', async () => {
    const sb = sandbox();
    await sb.ok(['systemctl', 'stop', 'corral@hello.service']);
    const t0 = Date.now();
    await sb.ok(['systemctl', 'start', 'corral@hello.service']);
    const took = Date.now() - t0;
    assert.ok(took >= INIT_MS, `start returned after ${took} ms, before the app's ${INIT_MS} ms init`);
    // Right away: active, and served without waiting.
    assert.equal(await sb.prop('corral@hello.service', 'SubState'), 'running');
    const t1 = Date.now();
    const r = await get(sb, { url: URL }, 5000);
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t1 < 1000, 'served at once after start returned');
  });

  test("systemctl status shows corral's STATUS line", async () => {
    const sb = sandbox();
    const status = await sb.prop('corral@hello.service', 'StatusText');
    assert.match(status, /workers/);
    assert.match(status, /generation/);
    const out = await sb.exec(['systemctl', 'status', '--no-pager', 'corral@hello.service']);
    assert.match(out.stdout, /Status: ".*workers.*"/);
    assert.match(out.stdout, /TriggeredBy: .*corral@hello\.socket/);
  });

  test('journalctl -u shows access and error lines; -p err shows only errors', async () => {
    const sb = sandbox();
    await get(sb, { url: URL, path: '/?rid=journal-ok' });
    const fail = await get(sb, { url: URL, path: '/fail?rid=journal-fail' });
    assert.equal(fail.status, 500);
    const all = await waitFor('the access line in the journal', async () => {
      const j = await sb.journal('corral@hello.service', '-o', 'cat');
      return j.includes('rid=journal-ok') && j.includes('fixture failure for journal-fail') ? j : undefined;
    }, { timeoutMs: 10_000 });
    assert.match(all, /rid=journal-fail/, 'the failed request has an access line too');
    const errs = await sb.journal('corral@hello.service', '-p', 'err', '-o', 'json');
    const entries = errs.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
    assert.ok(entries.some((e) => String(e.MESSAGE).includes('fixture failure for journal-fail')), 'the error is at priority err or above');
    for (const e of entries) {
      assert.ok(Number(e.PRIORITY) <= 3, `priority ${e.PRIORITY}: ${e.MESSAGE}`);
      assert.doesNotMatch(String(e.MESSAGE), /"status":200/, 'no access line at priority err');
    }
    const ok = await sb.journal('corral@hello.service', '-o', 'json', '--grep', 'rid=journal-ok');
    for (const line of ok.trim().split('\n')) {
      assert.ok(Number((JSON.parse(line) as { PRIORITY: string }).PRIORITY) >= 5, `access line priority: ${line}`);
    }
  });

  test('the watchdog kills and restarts a master that stops pinging', async () => {
    const sb = sandbox();
    // A short watchdog for the test; SIGSTOP freezes the master: no more WATCHDOG=1.
    await sb.sh(`
      mkdir -p /etc/systemd/system/corral@hello.service.d
      printf '[Service]\\nWatchdogSec=3\\nTimeoutAbortSec=3\\n' > /etc/systemd/system/corral@hello.service.d/50-test-watchdog.conf
      systemctl daemon-reload
      systemctl restart corral@hello.service
    `);
    const pid = await sb.prop('corral@hello.service', 'MainPID');
    // Healthy for longer than the watchdog period: the master pings.
    await sleep(4500);
    assert.equal(await sb.prop('corral@hello.service', 'MainPID'), pid, 'a healthy master is not killed');
    assert.equal(await sb.prop('corral@hello.service', 'NRestarts'), '0');
    await sb.ok(['kill', '-STOP', pid]);
    const newPid = await waitFor('a new master after the watchdog fired', async () => {
      const p = await sb.prop('corral@hello.service', 'MainPID');
      const state = await sb.prop('corral@hello.service', 'SubState');
      return p !== pid && p !== '0' && state === 'running' ? p : undefined;
    }, { timeoutMs: 40_000, intervalMs: 250 });
    assert.notEqual(newPid, pid);
    assert.equal(await sb.prop('corral@hello.service', 'NRestarts'), '1');
    assert.match(await sb.journal('corral@hello.service'), /Watchdog timeout/);
    assert.equal((await get(sb, { url: URL })).status, 200);
    await sb.sh(`
      rm /etc/systemd/system/corral@hello.service.d/50-test-watchdog.conf
      systemctl daemon-reload
    `);
  });

  test('a configuration error (exit 78) is not restarted', async () => {
    const sb = sandbox();
    await installApp(sb, { name: 'badconf', port: 8003, env: { CORRAL_TIMEOUT: 'soon' } });
    const r = await sb.exec(['systemctl', 'start', 'corral@badconf.service']);
    assert.notEqual(r.code, 0, 'start fails');
    assert.equal(await sb.prop('corral@badconf.service', 'ExecMainStatus'), '78');
    // Three RestartSec= periods: no restart may happen.
    await sleep(6500);
    assert.equal(await sb.prop('corral@badconf.service', 'NRestarts'), '0');
    assert.equal(await sb.prop('corral@badconf.service', 'ActiveState'), 'failed');
    const j = await sb.journal('corral@badconf.service', '-o', 'cat');
    assert.match(j, /timeout.*soon|soon.*timeout/i, 'the log names the setting and the bad value');
    assert.equal((j.match(/Starting corral@badconf/g) ?? []).length, 1, j);
  });

  test('a configuration error started by the socket stops at the start limit', async () => {
    const sb = sandbox();
    await sb.ok(['systemctl', 'reset-failed', 'corral@badconf.service']);
    const r = await sb.exec(['curl', '-sS', '--max-time', '20', 'http://127.0.0.1:8003/']);
    assert.notEqual(r.code, 0, 'the waiting connection is not served');
    const starts = async () => ((await sb.journal('corral@badconf.service', '-o', 'cat')).match(/Starting corral@badconf/g) ?? []).length;
    await waitFor('the socket to give up', async () => (await sb.prop('corral@badconf.socket', 'Result')) === 'service-start-limit-hit', { timeoutMs: 20_000 });
    const n = await starts();
    await sleep(3000);
    assert.equal(await starts(), n, 'no more starts');
    assert.ok(n <= 1 + 5, `${n} starts in all`);
    assert.equal(await sb.prop('corral@badconf.service', 'NRestarts'), '0');
    const refused = await sb.exec(['curl', '-sS', '--max-time', '5', 'http://127.0.0.1:8003/']);
    assert.match(refused.stderr, /curl: \(7\)|refused/i, 'new connections are refused: a proxy moves on');
  });
});
