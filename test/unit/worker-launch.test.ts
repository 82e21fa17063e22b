import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { argMax, execBytes } from '../../src/config/exec-limits.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { isCorralError } from '../../src/errors.js';
import { workerFds, workerStdio } from '../../src/ipc/fds.js';
import type { Listener } from '../../src/listeners/acquire.js';
import { checkWorkerLaunch, type SpawnContext } from '../../src/master/spawn.js';

const MiB = 1024 * 1024;

async function context(env: NodeJS.ProcessEnv, listenerCount = 1): Promise<SpawnContext> {
  const r = await resolveConfig({ cli: { app: 'app.mjs' }, env: {}, cwd: '/nonexistent' });
  const listeners: Listener[] = Array.from({ length: listenerCount }, (_, i) => ({ fd: 3 + i, label: `127.0.0.1:${10000 + i}`, names: [`127.0.0.1:${10000 + i}`], cleanup() {}, close() {} }));
  return { config: r.config, access: undefined, gen: 1, slot: 1, listeners, env, cwd: '/srv/app' };
}

function refused(fn: () => void, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isCorralError(err), String(err));
    assert.equal(err.code, 'E_WORKER_ENV');
    assert.equal(err.exitCode, 78);
    assert.match(err.message, re);
    return true;
  });
}

const origin = () => 'env file /srv/app/.env';

describe('the kernel limits on a new process (execve(2))', () => {
  test('ARG_MAX is a quarter of the stack limit, at least 128 KiB, at most 6 MiB', () => {
    const limits = (stack: string) => `Max cpu time              unlimited            unlimited            seconds\nMax stack size            ${stack}              unlimited            bytes\n`;
    assert.equal(argMax(limits('8388608')), 2 * MiB);
    assert.equal(argMax(limits('65536')), 128 * 1024, 'the floor');
    assert.equal(argMax(limits('104857600')), 6 * MiB, '3/4 of _STK_LIM');
    assert.equal(argMax(limits('unlimited')), 6 * MiB);
    assert.equal(argMax(''), 128 * 1024, 'unknown: the floor, which every kernel allows');
  });

  test('agrees with getconf ARG_MAX on this machine', (t) => {
    const r = spawnSync('getconf', ['ARG_MAX'], { encoding: 'utf8' });
    if (r.status !== 0) return t.skip('no getconf');
    assert.equal(argMax(), Number(r.stdout.trim()));
  });

  test('counts every string with its NUL and a pointer, and the file name', () => {
    assert.equal(execBytes('/bin/node', ['a', 'bc'], { K: 'v', GONE: undefined }), 10 + (2 + 8) + (3 + 8) + (4 + 8));
  });

  test('a start that fits the limits passes', async () => {
    checkWorkerLaunch(await context({ PATH: '/usr/bin', SMALL: 'x'.repeat(1000) }), origin);
  });

  test('a NUL byte in a variable is refused, naming it and where it came from', async () => {
    const ctx = await context({ GOOD: 'x', BAD: 'a\0b' });
    refused(() => checkWorkerLaunch(ctx, origin), /^BAD \(from env file \/srv\/app\/\.env\) contains a NUL byte/);
  });

  test('one variable over 128 KiB is refused, naming it and the limit', async () => {
    const ctx = await context({ BIG: 'x'.repeat(200 * 1024) });
    refused(() => checkWorkerLaunch(ctx, origin), /^BIG \(from env file .*\) is 200 KiB, over the kernel's limit of 128 KiB for one variable \(MAX_ARG_STRLEN/);
  });

  test('variables that each fit but not all together are refused, naming the largest and the limit', async () => {
    const env: NodeJS.ProcessEnv = {};
    for (let i = 0; i < argMax() / (100 * 1024) + 2; i++) env[`V${i}`] = 'x'.repeat(100 * 1024 + i);
    const last = Object.keys(env).length - 1;
    const ctx = await context(env);
    const expected = `: V${last} 100 KiB, V${last - 1} 100 KiB, V${last - 2} 100 KiB \\(from env file \\/srv\\/app\\/\\.env\\)$`;
    refused(() => checkWorkerLaunch(ctx, origin), new RegExp(`come to [\\d.]+ MiB, over the kernel's limit of [\\d.]+ MiB .*${expected}`));
  });

  test('10,000 binds make the workers\' settings too large for one variable: refused before any spawn', async () => {
    const ctx = await context({}, 10_000);
    refused(() => checkWorkerLaunch(ctx, origin), /^the workers' start-up settings \(CORRAL_WORKER, with 10000 listener\(s\)\) is \d+ KiB, over .*use fewer binds/);
  });
});

describe('the descriptor layout', () => {
  test('the stdio array puts each descriptor where workerFds says', () => {
    const fds = workerFds(2);
    const stdio = workerStdio([7, 9], 1, 'pipe') as unknown[];
    assert.deepEqual(stdio.slice(0, 3), ['ignore', 'pipe', 'pipe']);
    assert.deepEqual(fds.listeners.map((fd) => stdio[fd]), [7, 9]);
    assert.equal(stdio[fds.ipc], 'ipc');
    assert.equal(stdio[fds.accessStream], 1);
    assert.equal(stdio[fds.errorLog], 'pipe');
    assert.equal(stdio.length, fds.errorLog + 1);
    assert.equal((workerStdio([], undefined, 'inherit') as unknown[])[workerFds(0).accessStream], 'ignore');
  });
});
