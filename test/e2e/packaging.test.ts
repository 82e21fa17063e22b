/**
 * Packaging against a real systemd: scripts/install, scripts/health-check and
 * scripts/uninstall as an operator runs them, and the units they install
 * (`systemd-analyze verify` clean, `systemd-analyze security` at most 2.0).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cannotRun, CORRAL_HOME, installApp, useSandbox } from './harness.js';

const skip = cannotRun();
const SCRIPTS = `${CORRAL_HOME}/scripts`;

describe('packaging', { skip, timeout: 600_000 }, () => {
  const sandbox = useSandbox(import.meta.url);

  test('install creates the user, directories, env file, units and logrotate config', async () => {
    const sb = sandbox();
    const out = await installApp(sb, { name: 'hello', port: 8000, workers: 2, env: { NODE_ENV: 'production' } });
    assert.match(out, /created system user hello/);
    const facts = await sb.sh(`
      getent passwd hello | cut -d: -f6,7
      stat -c '%n %a %U:%G' /etc/corral/hello.env /var/log/corral/hello /etc/logrotate.d/corral-hello \\
        /etc/systemd/system/corral@.service /etc/systemd/system/corral@.socket
      systemctl is-enabled corral@hello.socket
      systemctl is-active corral@hello.socket
      systemctl is-active corral@hello.service || true
      cat /etc/corral/hello.env
    `);
    assert.match(facts, /^\/nonexistent:\/usr\/sbin\/nologin$/m);
    assert.match(facts, /^\/etc\/corral\/hello\.env 640 root:hello$/m);
    assert.match(facts, /^\/var\/log\/corral\/hello 750 hello:hello$/m);
    assert.match(facts, /^\/etc\/logrotate\.d\/corral-hello 644 root:root$/m);
    assert.match(facts, /^\/etc\/systemd\/system\/corral@\.service 644 root:root$/m);
    assert.match(facts, /^enabled\nactive\ninactive$/m, 'socket enabled and listening, service not started yet');
    assert.match(facts, /^CORRAL_APP=\/srv\/hello\/app\.mjs$/m);
    assert.match(facts, /^CORRAL_WORKERS=2$/m);
    assert.match(facts, /^NODE_ENV=production$/m);
    assert.match(facts, /^CORRAL_ACCESS_LOG=-\nCORRAL_ERROR_LOG=-$/m, 'logs go to the journal by default');
    const unit = await sb.ok(['systemctl', 'cat', 'corral@hello.service']);
    assert.match(unit, new RegExp(`^ExecStart=/\\S*node ${CORRAL_HOME}/dist/src/cli.js serve$`, 'm'));
    assert.match(unit, /^User=hello$/m);
    assert.match(unit, /^WorkingDirectory=\/srv\/hello$/m);
    assert.match(unit, /^TimeoutStopSec=45$/m);
  });

  test('install is safe to run twice and keeps an edited env file', async () => {
    const sb = sandbox();
    await sb.sh(`printf '# edited\\nCORRAL_MAX_REQUESTS=1000\\n' >> /etc/corral/hello.env`);
    const out = await installApp(sb, { name: 'hello', port: 8000, workers: 2, env: { NODE_ENV: 'production' } });
    assert.doesNotMatch(out, /wrote|created/, out);
    assert.match(out, /kept \/etc\/corral\/hello\.env/);
    assert.match(await sb.ok(['cat', '/etc/corral/hello.env']), /# edited\nCORRAL_MAX_REQUESTS=1000/);
  });

  test('systemd-analyze verify is clean', async () => {
    const sb = sandbox();
    const r = await sb.exec(['systemd-analyze', 'verify', 'corral@hello.service', 'corral@hello.socket']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stdout + r.stderr).trim(), '', 'no warnings');
  });

  test('systemd-analyze security rates the service at most 2.0', async () => {
    const sb = sandbox();
    const out = await sb.ok(['systemd-analyze', 'security', '--no-pager', 'corral@hello.service']);
    const m = /Overall exposure level for corral@hello\.service: (\d+\.\d+)/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} > 2.0\n${out}`);
  });

  test('health-check passes on a running app', async () => {
    const sb = sandbox();
    await sb.ok(['systemctl', 'start', 'corral@hello.service']);
    const r = await sb.exec([`${SCRIPTS}/health-check`, '--name', 'hello']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok +corral check passed/);
    assert.match(r.stdout, /ok +TimeoutStopSec=\d+ exceeds the graceful timeout \(30 s\)/);
    assert.match(r.stdout, /ok +corral@hello\.socket is listening on 127\.0\.0\.1:8000/);
    assert.match(r.stdout, /ok +corral@hello\.service is active \(running\)/);
    assert.match(r.stdout, /all checks passed/);
  });

  test('health-check fails, and says why, when something is wrong', async () => {
    const sb = sandbox();
    await sb.ok(['mv', '/etc/corral/hello.env', '/etc/corral/hello.env.away']);
    try {
      const r = await sb.exec([`${SCRIPTS}/health-check`, '--name', 'hello', '--no-app-check']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /FAIL +\/etc\/corral\/hello\.env is missing/);
    } finally {
      await sb.ok(['mv', '/etc/corral/hello.env.away', '/etc/corral/hello.env']);
    }
    // A shutdown delay added to the env file by hand, without rerunning install, no longer fits.
    await sb.ok(['cp', '/etc/corral/hello.env', '/etc/corral/hello.env.keep']);
    try {
      await sb.sh('echo CORRAL_SHUTDOWN_DELAY=60 >> /etc/corral/hello.env');
      const r = await sb.exec([`${SCRIPTS}/health-check`, '--name', 'hello', '--no-app-check']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /FAIL +TimeoutStopSec=\d+ does not exceed shutdown-delay \+ graceful timeout \(60 \+ 30 s\)/);
    } finally {
      await sb.ok(['mv', '/etc/corral/hello.env.keep', '/etc/corral/hello.env']);
    }
    await sb.sh(`
      install -d /srv/broken
      echo 'throw new Error("cannot load")' > /srv/broken/app.mjs
    `);
    await sb.ok([`${SCRIPTS}/install`, '--name', 'broken', '--app', '/srv/broken/app.mjs', '--port', '8009']);
    const r = await sb.exec([`${SCRIPTS}/health-check`, '--name', 'broken']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /FAIL +corral check failed/);
    assert.match(r.stdout, /cannot load/);
    const none = await sb.exec([`${SCRIPTS}/health-check`, '--name', 'nosuchapp']);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /FAIL +corral@nosuchapp\.service is not installed/);
  });

  test('the default listener is a unix socket nginx (www-data) can reach', async () => {
    const sb = sandbox();
    await installApp(sb, { name: 'sock' });
    const st = await sb.ok(['stat', '-c', '%a %U:%G %F', '/run/corral/sock.sock']);
    assert.equal(st.trim(), '660 root:www-data socket');
    const body = await sb.ok(['runuser', '-u', 'www-data', '--', 'curl', '-sS', '--max-time', '60', '--unix-socket', '/run/corral/sock.sock', 'http://localhost/']);
    assert.match(body, /^hello v1 \d+$/m);
  });

  test('every script has --help and rejects bad arguments with exit 2', async () => {
    const sb = sandbox();
    for (const s of ['install', 'uninstall', 'health-check']) {
      const help = await sb.exec([`${SCRIPTS}/${s}`, '--help']);
      assert.equal(help.code, 0, s);
      assert.match(help.stdout, /^Usage: scripts\//, s);
      const bad = await sb.exec([`${SCRIPTS}/${s}`, '--bogus']);
      assert.equal(bad.code, 2, s);
      assert.match(bad.stderr, /unknown argument '--bogus'/, s);
    }
    const r = await sb.exec([`${SCRIPTS}/install`, '--name', 'Bad Name', '--app', '/srv/hello/app.mjs']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid --name/);
    const hidden = await sb.sh(`
      install -d /home/someone && cp /srv/hello/app.mjs /srv/hello/version.txt /home/someone/
      ${SCRIPTS}/install --name homeapp --app /home/someone/app.mjs 2>&1 || echo "exit $?"
    `);
    assert.match(hidden, /hidden from the service \(ProtectHome=yes/);
    assert.match(hidden, /exit 1$/m);
  });

  test('uninstall keeps the logs; --purge deletes them and the user', async () => {
    const sb = sandbox();
    await installApp(sb, { name: 'bye', port: 8002 });
    await sb.ok(['curl', '-sS', '--max-time', '60', 'http://127.0.0.1:8002/']);
    await sb.ok(['touch', '/var/log/corral/bye/access.log']);
    const out = await sb.ok([`${SCRIPTS}/uninstall`, '--name', 'bye']);
    assert.match(out, /kept the logs in \/var\/log\/corral\/bye/);
    const left = await sb.sh(`
      systemctl is-active corral@bye.service corral@bye.socket || true
      ls /etc/corral; ls /etc/systemd/system | grep corral || true
      ls /var/log/corral/bye; getent passwd bye | cut -d: -f1
    `);
    assert.doesNotMatch(left, /^active$/m);
    assert.doesNotMatch(left, /bye\.env|corral@bye/);
    assert.match(left, /corral@\.service/, 'the shared units stay while other apps use them');
    assert.match(left, /^access\.log$/m);
    assert.match(left, /^bye$/m);
    const purge = await sb.ok([`${SCRIPTS}/uninstall`, '--name', 'bye', '--purge']);
    assert.match(purge, /removed system user bye/);
    const gone = await sb.sh(`test ! -e /var/log/corral/bye && ! getent passwd bye && echo gone`);
    assert.equal(gone.trim(), 'gone');
    for (const name of ['hello', 'sock', 'broken']) await sb.ok([`${SCRIPTS}/uninstall`, '--name', name, '--purge']);
    const last = await sb.sh(`ls /etc/systemd/system | grep -c corral || true`);
    assert.equal(last.trim(), '0', 'the last uninstall removes the shared units');
  });
});
