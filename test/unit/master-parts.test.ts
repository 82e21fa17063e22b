import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffMs } from '../../src/master/generation.js';
import { heartbeatMs, requestLimit } from '../../src/master/spawn.js';
import { restartOnlyWarnings } from '../../src/master/restart-only.js';
import { statusLine } from '../../src/master/status-line.js';
import { kebab, SETTING_NAMES, settingOf, type ResolvedConfig } from '../../src/config/settings.js';
import { resolution } from '../helpers/fake-runtime.js';
import { parseAppRef } from '../../src/worker/app-loader.js';
import { Notifier } from '../../src/systemd/notify.js';

describe('master parts', () => {
  test('crash backoff doubles from 0.5 s and is bounded at 30 s', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 10, 50].map(backoffMs), [0, 500, 1000, 2000, 4000, 30_000, 30_000]);
  });

  test('heartbeats come at least four times per timeout', () => {
    assert.equal(heartbeatMs(30), 1000);
    assert.equal(heartbeatMs(2), 500);
    assert.equal(heartbeatMs(0), 1000);
  });

  test('max-requests jitter spreads limits over [max, max + jitter]', () => {
    const cfg = { maxRequests: 100, maxRequestsJitter: 10 } as Parameters<typeof requestLimit>[0];
    assert.equal(requestLimit(cfg, () => 0), 100);
    assert.equal(requestLimit(cfg, () => 0.999), 110);
    assert.equal(requestLimit({ ...cfg, maxRequests: 0 }, () => 0.5), 0);
  });

  test('status line', () => {
    assert.equal(
      statusLine({ phase: 'running', current: { id: 2, target: 4, ready: 4 }, pending: undefined, draining: 1, lastReload: 'ok at 10:00:00' }),
      '4/4 workers serving (generation 2); 1 draining; last reload: ok at 10:00:00',
    );
    assert.equal(
      statusLine({ phase: 'running', current: { id: 2, target: 4, ready: 4 }, pending: { id: 3, target: 4, ready: 1 }, draining: 0, lastReload: 'none yet' }),
      '4/4 workers serving (generation 2); reloading: generation 3 1/4 ready; last reload: none yet',
    );
  });

  test('HUP: every restart-only setting that changed gets its own warning; nothing else does', async () => {
    const running = (await resolution()).config;
    const changed = (v: unknown): unknown =>
      Array.isArray(v) ? [...v, 'x'] : typeof v === 'number' ? v + 1 : typeof v === 'boolean' ? !v : `${String(v)}x`;
    const restartOnly = SETTING_NAMES.filter((n) => settingOf(n).reloadable === false);
    assert.ok(restartOnly.length >= 13);
    for (const name of SETTING_NAMES) {
      const next = { ...running, [name]: changed(running[name]) } as ResolvedConfig;
      const lines = restartOnlyWarnings(running, next);
      if (restartOnly.includes(name)) assert.deepEqual(lines, [`${kebab(name)} changed in the configuration, but it needs a restart: the running value is kept until then`]);
      else assert.deepEqual(lines, [], name);
    }
    assert.deepEqual(restartOnlyWarnings(running, { ...running, bind: [...running.bind] }), [], 'an equal list is no change');
  });

  test('APP[:EXPORT]', () => {
    assert.deepEqual(parseAppRef('app.mjs'), { path: 'app.mjs', exportName: undefined });
    assert.deepEqual(parseAppRef('src/app.mjs:handler'), { path: 'src/app.mjs', exportName: 'handler' });
    assert.deepEqual(parseAppRef('/srv/a:b/app.mjs'), { path: '/srv/a:b/app.mjs', exportName: undefined });
  });

  test('Notifier: off without NOTIFY_SOCKET; refuses to start when the addon is missing', () => {
    const off = new Notifier({});
    assert.equal(off.enabled, false);
    off.ready('x'); // a no-op, must not throw
    assert.throws(
      () => new Notifier({ NOTIFY_SOCKET: '@abstract' }, () => { throw new Error("Cannot find module 'sd-notify'"); }),
      /E_NOTIFY|sd-notify addon cannot be loaded .*npm rebuild sd-notify/,
    );
    const sent: string[] = [];
    const n = new Notifier({ NOTIFY_SOCKET: '@abstract', WATCHDOG_USEC: '2000000' }, () => ({ ready() {}, stopping() {}, watchdog() {}, sendState: (s: string) => void sent.push(s) }));
    assert.equal(n.watchdogIntervalMs, 1000);
    n.status('a');
    n.status('a');
    n.reloading();
    assert.equal(sent.length, 2, 'an unchanged STATUS is not resent');
    assert.match(sent[1]!, /^RELOADING=1\nMONOTONIC_USEC=\d+\n$/);
  });
});
