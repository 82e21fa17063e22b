import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { FakeNotifySocket } from '../helpers/notify-socket.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
const sockets: FakeNotifySocket[] = [];
after(() => {
  started.forEach((c) => c.kill());
  sockets.forEach((s) => s.close());
});

describe('systemd notifications', () => {
  test('READY=1, STATUS, RELOADING=1 with MONOTONIC_USEC, READY=1, STOPPING=1 in that order', async () => {
    const sock = await FakeNotifySocket.create();
    sockets.push(sock);
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', app('hello.mjs')], { env: { NOTIFY_SOCKET: sock.path } });
    started.push(c);
    const ready1 = await sock.waitFor((m) => m.includes('READY=1'));
    const status = await sock.waitFor((m) => m.startsWith('STATUS=') && m.includes('2/2 workers serving'));
    assert.ok(status <= ready1 + 1, 'a STATUS line accompanies readiness');
    const beforeHup = process.hrtime.bigint() / 1000n;
    c.signal('SIGHUP');
    const reloading = await sock.waitFor((m) => m.startsWith('RELOADING=1'), 15_000, ready1 + 1);
    const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(sock.messages[reloading]!)?.[1] ?? '0');
    assert.ok(usec >= beforeHup && usec <= process.hrtime.bigint() / 1000n, 'MONOTONIC_USEC is a CLOCK_MONOTONIC timestamp taken at the reload');
    const ready2 = await sock.waitFor((m) => m.includes('READY=1'), 15_000, reloading + 1);
    assert.match(sock.messages.slice(reloading).join('\n'), /STATUS=.*generation 2.*last reload: ok/);
    c.signal('SIGQUIT');
    const stopping = await sock.waitFor((m) => m === 'STOPPING=1\n' || m.startsWith('STOPPING=1'), 15_000, ready2 + 1);
    assert.ok(ready1 < reloading && reloading < ready2 && ready2 < stopping);
    assert.equal((await c.waitExit()).code, 0);
  });

  test('WATCHDOG=1 is sent at half of WATCHDOG_USEC while the loop runs', async () => {
    const sock = await FakeNotifySocket.create();
    sockets.push(sock);
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', app('hello.mjs')], {
      env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '600000' },
    });
    started.push(c);
    await sock.waitFor((m) => m.includes('READY=1'));
    const t0 = Date.now();
    const first = await sock.waitFor((m) => m.startsWith('WATCHDOG=1'));
    await sock.waitFor((m) => m.startsWith('WATCHDOG=1'), 5000, first + 1);
    await sock.waitFor((m) => m.startsWith('WATCHDOG=1'), 5000, sock.messages.lastIndexOf('WATCHDOG=1\n') + 1);
    const pings = sock.messages.filter((m) => m.startsWith('WATCHDOG=1')).length;
    const elapsed = Date.now() - t0;
    assert.ok(pings >= 3);
    assert.ok(pings <= Math.ceil(elapsed / 250) + 2, `about one ping per 300 ms, got ${pings} in ${elapsed} ms`);
    // a stopped master (event loop frozen) sends nothing: that is what lets systemd kill it
    c.signal('SIGSTOP');
    const frozenAt = sock.messages.length;
    await new Promise((r) => setTimeout(r, 900));
    assert.equal(sock.messages.length, frozenAt, 'no pings while the master is stopped');
    c.signal('SIGCONT');
    await sock.waitFor((m) => m.startsWith('WATCHDOG=1'), 5000, frozenAt);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('NOTIFY_SOCKET that is not a socket refuses to start with exit 78 and a fix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-notify-bad-'));
    const bogus = join(dir, 'not-a-socket');
    writeFileSync(bogus, '');
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, app('hello.mjs')], { env: { NOTIFY_SOCKET: bogus } });
    assert.equal(r.code, 78);
    assert.match(r.output, /E_NOTIFY: NOTIFY_SOCKET=.* is not a writable socket; unset NOTIFY_SOCKET/);
  });
});
