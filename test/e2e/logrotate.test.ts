/**
 * Log files and the shipped logrotate config, run by the real logrotate under load: every
 * access line survives two rotations (rename, create, SIGUSR1 to the master only), none is
 * torn or duplicated, and the files keep the app user's ownership.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { join } from 'node:path';
import { cannotRun, CORRAL_HOME, installApp, progress, sleep, startLoad, useSandbox, waitFor } from './harness.js';

const skip = cannotRun();
const LOG_DIR = '/var/log/corral/logs';
const CONF = '/etc/logrotate.d/corral-logs';
const STATE = '/var/lib/logrotate/corral-e2e.status';
const REQUESTS = 6000;

describe('logrotate', { skip, timeout: 600_000 }, () => {
  const sandbox = useSandbox(import.meta.url);

  before(async () => {
    const sb = sandbox();
    await installApp(sb, { name: 'logs', port: 8000, workers: 2, extraArgs: ['--logs', 'files'] });
    await sb.ok(['systemctl', 'start', 'corral@logs.service']);
  });

  test('health-check passes with logs in files', async () => {
    const sb = sandbox();
    const r = await sb.exec([`${CORRAL_HOME}/scripts/health-check`, '--name', 'logs']);
    assert.equal(r.code, 0, r.stdout);
  });

  test("the installed config passes logrotate's own checks", async () => {
    const sb = sandbox();
    const r = await sb.exec(['logrotate', '--debug', '--state', `${STATE}.debug`, CONF]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /error:/i);
    assert.match(r.stdout + r.stderr, /switching euid from 0 to \d+ and egid from 0 to \d+|su logs logs/i);
  });

  test('two rotations under load with SIGUSR1 lose no access line', async (t) => {
    const sb = sandbox();
    const progressFile = join(sb.dir, 'rotate.progress');
    const load = startLoad(sb, {
      url: 'http://127.0.0.1:8000', concurrency: 4, requests: REQUESTS, seconds: 120, progressFile, tag: 'rot',
    });
    for (const at of [REQUESTS / 3, (2 * REQUESTS) / 3]) {
      await waitFor(`${at} requests`, () => progress(progressFile) >= at, { timeoutMs: 60_000, intervalMs: 50 });
      const r = await sb.exec(['logrotate', '--force', '--verbose', '--state', STATE, CONF]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    const result = await load.result();
    assert.equal(result.failed, 0, JSON.stringify(result.errors));
    assert.equal(result.total, REQUESTS);
    await sleep(1000); // the last lines reach the file

    const files = await sb.ok(['bash', '-c', `cd ${LOG_DIR} && stat -c '%n %a %U:%G' access.log*`]);
    t.diagnostic(files.trim().replace(/\n/g, '; '));
    assert.match(files, /^access\.log 640 logs:logs$/m, 'the new file belongs to the app');
    assert.match(files, /^access\.log\.1 /m);
    assert.match(files, /^access\.log\.2\.gz /m, 'compressed one rotation late (delaycompress)');

    const text = await sb.ok(['bash', '-c', `cd ${LOG_DIR} && for f in access.log*; do case $f in *.gz) zcat "$f" ;; *) cat "$f" ;; esac; done`]);
    const seen = new Map<string, number>();
    let torn = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        JSON.parse(line);
      } catch {
        torn++;
        continue;
      }
      const m = /rid=(rot-\d+)/.exec(line);
      if (m) seen.set(m[1]!, (seen.get(m[1]!) ?? 0) + 1);
    }
    const duplicated = [...seen.values()].filter((n) => n > 1).length;
    assert.equal(torn, 0, 'torn lines');
    assert.equal(duplicated, 0, 'duplicated lines');
    assert.equal(seen.size, REQUESTS, `${REQUESTS - seen.size} access lines lost`);
    const current = await sb.ok(['bash', '-c', `grep -c 'rid=rot-' ${LOG_DIR}/access.log || true`]);
    assert.ok(Number(current) > 0, 'lines written after the last rotation are in the new access.log (reopened)');
  });

  test('SIGUSR1 reaches the master only: no worker starts the Node inspector', async () => {
    const sb = sandbox();
    const listeners = await sb.ok(['ss', '-Hltn', 'sport = :9229']);
    assert.equal(listeners.trim(), '');
    const usr1 = await sb.journal('corral@logs.service', '-o', 'cat', '--grep', 'USR1');
    assert.notEqual(usr1.trim(), '', 'the master logged the reopen');
  });
});
