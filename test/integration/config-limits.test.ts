import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { argMax } from '../../src/config/exec-limits.js';
import { Corral, runCli, type Exit } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

/**
 * Variables of 100 KiB each, 5 MB in all (more when this machine's stack limit lets a
 * process have more): each one fits a process's environment, all together do not.
 */
function hugeEnvFile(): string {
  const count = Math.max(50, Math.ceil(argMax() / (100 * 1024)) + 10);
  return Array.from({ length: count }, (_, i) => `VAR_${i}=${'x'.repeat(100 * 1024)}\n`).join('');
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'corral-limits-'));
}

function assertConfigError(r: Exit & { output: string }, re: RegExp): void {
  assert.equal(r.code, 78, r.output);
  const lines = r.output.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.output.slice(0, 2000)}`);
  assert.match(lines[0]!, /^corral: error E_WORKER_ENV: /);
  assert.match(lines[0]!, re);
}

describe('an environment no worker could be started with', () => {
  test('a 5 MB .env at start: exit 78, one line naming the env file and the kernel limit', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), hugeEnvFile());
    const r = await runCli(['--bind', `127.0.0.1:${await freePort()}`, app('hello.mjs')], { cwd });
    assertConfigError(r, new RegExp(`come to [\\d.]+ MiB, over the kernel's limit of [\\d.]+ MiB .*: VAR_\\d+ 100 KiB, .* \\(from env file ${join(cwd, '.env').replace(/[.]/g, '\\.')}\\)`));
  });

  test('one variable over 128 KiB at start: exit 78 naming it', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), `SMALL=1\nBLOB=${'y'.repeat(200 * 1024)}\n`);
    const r = await runCli(['--bind', `127.0.0.1:${await freePort()}`, app('hello.mjs')], { cwd });
    assertConfigError(r, /BLOB \(from env file .*\.env\) is 200 KiB, over the kernel's limit of 128 KiB for one variable/);
  });

  test('a NUL byte in a .env value at start: exit 78 naming the variable', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'GOOD=1\nBAD=a\0b\n');
    const r = await runCli(['--bind', `127.0.0.1:${await freePort()}`, app('hello.mjs')], { cwd });
    assertConfigError(r, /BAD \(from env file .*\.env\) contains a NUL byte/);
  });

  test('corral check finds it too: a FAIL line naming the variable, exit 78', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'BAD=a\0b\n');
    const r = await runCli(['check', '--bind', `127.0.0.1:${await freePort()}`, app('hello.mjs')], { cwd });
    assert.equal(r.code, 78, r.output);
    assert.match(r.output, /^FAIL {2}BAD \(from env file .*\.env\) contains a NUL byte/m);
    writeFileSync(join(cwd, '.env'), 'GOOD=1\n');
    const ok = await runCli(['check', '--bind', `127.0.0.1:${await freePort()}`, app('hello.mjs')], { cwd });
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.output, /^ok {4}workers can be started with this environment$/m);
  });

  test('the same files at a HUP: each reload fails, the old workers keep serving, and a fixed file reloads', async () => {
    const cwd = tempDir();
    const env = join(cwd, '.env');
    writeFileSync(env, 'GREETING=hi\n');
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', app('hello.mjs')], { cwd });
    started.push(c);
    await c.waitReady();
    const pids = await c.workerPids();
    const cases: Array<[string, RegExp]> = [
      [hugeEnvFile(), /over the kernel's limit of [\d.]+ MiB/],
      ['BAD=a\0b\n', /BAD \(from env file .*\) contains a NUL byte/],
    ];
    for (const [i, [text, why]] of cases.entries()) {
      writeFileSync(env, text);
      const r = await runCli(['reload', '--wait', String(c.pid)]);
      assert.notEqual(r.code, 0, r.output);
      assert.match(r.output, /E_RELOAD_FAILED/);
      const line = await c.waitForLine(new RegExp(`reload #${i + 1} failed, previous generation keeps serving: configuration invalid: `));
      assert.match(line, why);
      assert.equal((await get({ port })).status, 200, 'the old worker still answers');
      assert.deepEqual(await c.workerPids(), pids, 'the old worker is the one serving');
    }
    writeFileSync(env, 'GREETING=again\n');
    assert.equal((await runCli(['reload', '--wait', String(c.pid)])).code, 0);
    assert.equal((await get({ port })).status, 200);
    c.signal('SIGTERM');
    assert.equal((await c.waitExit()).code, 0, c.output.slice(-3000));
  });
});
