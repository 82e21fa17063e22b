import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBind } from '../../src/listeners/bind-spec.js';
import { parseListenFds } from '../../src/systemd/listen-fds.js';
import { LISTEN_ENV, unsetEnv, workerEnv } from '../../src/systemd/env.js';
import { parseCpuMax } from '../../src/config/cpus.js';
import { CorralError } from '../../src/errors.js';

describe('bind addresses', () => {
  test('accepted forms', () => {
    assert.deepEqual(parseBind('127.0.0.1:8000'), { kind: 'tcp', host: '127.0.0.1', port: 8000, text: '127.0.0.1:8000' });
    assert.deepEqual(parseBind('[::]:80'), { kind: 'tcp', host: '::', port: 80, text: '[::]:80' });
    assert.deepEqual(parseBind('[::1]:0'), { kind: 'tcp', host: '::1', port: 0, text: '[::1]:0' });
    assert.deepEqual(parseBind('localhost:3000'), { kind: 'tcp', host: 'localhost', port: 3000, text: 'localhost:3000' });
    assert.deepEqual(parseBind(':3000'), { kind: 'tcp', host: '0.0.0.0', port: 3000, text: '0.0.0.0:3000' });
    assert.deepEqual(parseBind('8080'), { kind: 'tcp', host: '0.0.0.0', port: 8080, text: '0.0.0.0:8080' });
    assert.deepEqual(parseBind('unix:/run/app/web.sock'), { kind: 'unix', path: '/run/app/web.sock', text: 'unix:/run/app/web.sock' });
    assert.deepEqual(parseBind('fd://3'), { kind: 'fd', fd: 3, text: 'fd://3' });
  });

  test('rejected forms state the rule', () => {
    assert.throws(() => parseBind('localhost'), /has no port/);
    assert.throws(() => parseBind('1.2.3.4:70000'), /port .* must be a number from 0 to 65535/);
    assert.throws(() => parseBind('::1:80'), /IPv6 addresses need brackets/);
    assert.throws(() => parseBind('[nothex]:80'), /not an IPv6 address/);
    assert.throws(() => parseBind('fd://1'), /≥ 3/);
    assert.throws(() => parseBind('unix:'), /empty/);
    assert.throws(() => parseBind('unix:/' + 'x'.repeat(120)), /longer than 107 bytes/);
  });
});

describe('systemd socket activation variables', () => {
  test('LISTEN_FDS with names, for this PID', () => {
    assert.deepEqual(parseListenFds({ LISTEN_FDS: '2', LISTEN_PID: '42', LISTEN_FDNAMES: 'web:admin' }, 42), [
      { fd: 3, name: 'web' },
      { fd: 4, name: 'admin' },
    ]);
    assert.deepEqual(parseListenFds({ LISTEN_FDS: '1' }, 42), [{ fd: 3, name: 'unknown' }]);
  });

  test('variables meant for another PID are ignored; none means none', () => {
    assert.deepEqual(parseListenFds({ LISTEN_FDS: '1', LISTEN_PID: '7' }, 42), []);
    assert.deepEqual(parseListenFds({}, 42), []);
  });

  test('malformed variables are configuration errors', () => {
    assert.throws(() => parseListenFds({ LISTEN_FDS: 'two', LISTEN_PID: '42' }, 42), /LISTEN_FDS="two" is not a number/);
    assert.throws(() => parseListenFds({ LISTEN_FDS: '2', LISTEN_PID: '42', LISTEN_FDNAMES: 'web' }, 42), /LISTEN_FDNAMES has 1 name\(s\) but LISTEN_FDS=2/);
  });

  test('LISTEN_PID: another PID means the variables are not ours, even when malformed; a non-PID is an error', () => {
    assert.deepEqual(parseListenFds({ LISTEN_FDS: 'garbage', LISTEN_PID: '7' }, 42), []);
    for (const bad of ['abc', '', '-1', '0', '42abc', '4.2']) {
      assert.throws(() => parseListenFds({ LISTEN_FDS: '1', LISTEN_PID: bad }, 42), (err: unknown) => {
        assert.ok(err instanceof CorralError);
        assert.equal(err.code, 'E_LISTEN_FDS');
        assert.equal(err.exitCode, 78);
        assert.match(err.message, new RegExp(`^LISTEN_PID=${JSON.stringify(JSON.stringify(bad)).slice(1, -1)} is not a process ID`));
        return true;
      });
    }
  });

  test('LISTEN_FDS cannot name more descriptors than are open', () => {
    assert.throws(() => parseListenFds({ LISTEN_FDS: '99999999999', LISTEN_PID: '42' }, 42, 5), /LISTEN_FDS=99999999999 is more descriptors than this process has open from fd 3 up \(5\)/);
    assert.deepEqual(parseListenFds({ LISTEN_FDS: '2', LISTEN_PID: '42' }, 42, 2).map((p) => p.fd), [3, 4]);
    // without a bound from the caller, a huge count is still no RangeError
    assert.throws(() => parseListenFds({ LISTEN_FDS: '99999999999', LISTEN_PID: '42' }, 42), /is more descriptors than/);
  });

  test('every LISTEN_ variable is removed in place; a worker sees none of the master-only variables', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_FDS: '1', LISTEN_PID: '1', LISTEN_FDNAMES: 'x', KEEP: 'y' };
    unsetEnv(env, LISTEN_ENV);
    assert.deepEqual(env, { KEEP: 'y' });
    const master: NodeJS.ProcessEnv = { LISTEN_FDS: '1', NOTIFY_SOCKET: '/run/n', WATCHDOG_USEC: '1', WATCHDOG_PID: '1', KEEP: 'y' };
    assert.deepEqual(workerEnv(master), { KEEP: 'y' });
    assert.equal(master.NOTIFY_SOCKET, '/run/n', 'the master keeps its own');
  });
});

describe('usable CPUs', () => {
  test('cgroup v2 cpu.max', () => {
    assert.equal(parseCpuMax('max 100000\n'), undefined);
    assert.equal(parseCpuMax('150000 100000\n'), 1.5);
    assert.equal(parseCpuMax('50000 100000'), 0.5);
  });
});
