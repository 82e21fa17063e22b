import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { waitHttp } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

describe('workers that fail before they were ever ready', () => {
  test('at start: the master logs a failed boot with the exit code\'s meaning and the app\'s reason, then exits 4', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', app('not-an-app.mjs')]);
    started.push(c);
    assert.equal((await c.waitExit()).code, 4, c.output);
    const line = await c.waitForLine(/"role":"master".*failed to boot/);
    assert.match(line, /"msg":"worker \d+ \(gen 1 #1\) failed to boot: exited with code 4 \(app could not be loaded\): app module \S+not-an-app\.mjs: default export is a number \(42\)/);
    assert.match(c.output, /E_APP_SHAPE: app module \S+not-an-app\.mjs: default export is a number \(42\); corral serves /);
    assert.doesNotMatch(c.output, /while serving/);
  });

  test('at a reload: a new worker that fails after it was told to stop is a failed boot too, not "while serving; replacing it"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-boot-'));
    const mode = join(dir, 'mode');
    const failNow = join(dir, 'fail-now');
    writeFileSync(mode, 'good');
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', app('fails-unless-good.mjs')], {
      env: { BOOT_MODE_FILE: mode, FAIL_NOW: failNow },
    });
    started.push(c);
    await c.waitReady();
    writeFileSync(mode, 'bad');
    const reload = runCli(['reload', '--wait', String(c.pid)]);
    // One worker of generation 2 fails at once: the reload fails and the other, still loading, is told to drain.
    const from = c.lines.length;
    const failed = await c.waitForLine(/reload #1 failed, previous generation keeps serving/, 20_000, from);
    const first = /\(gen 2 #(\d)\)/.exec(failed)![1]!;
    const other = first === '1' ? '2' : '1';
    assert.notEqual((await reload).code, 0);
    assert.match(c.output, new RegExp(`\\(gen 2 #${first}\\) failed to boot: exited with code 4 \\(app could not be loaded\\): app module \\S+ failed to load: Error: broken on purpose \\(first\\)`));
    writeFileSync(failNow, '');
    const second = await c.waitForLine(new RegExp(`\\(gen 2 #${other}\\) (failed to boot|exited|stopped|was killed)`), 20_000, from);
    assert.match(second, new RegExp(`"level":"error".*"msg":"worker \\d+ \\(gen 2 #${other}\\) failed to boot: exited with code 4 \\(app could not be loaded\\)`));
    assert.doesNotMatch(c.output, /while serving/);
    // The old generation serves on.
    assert.match((await waitHttp(port)).body, /^good /);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0, c.output);
  });
});
