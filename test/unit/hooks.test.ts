import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { callBounded, parseHooks, type HookEvent, type Hooks } from '../../src/config/hooks.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { CorralError } from '../../src/errors.js';
import { defineConfig, type ReloadEndedEvent, type StopCause, type WorkerExitedEvent } from '../../src/index.js';
import { MasterHooks, MAX_WAITING, workerHooksSpec } from '../../src/master/hooks.js';
import { stopBudgetWarning } from '../../src/master/stop-budget.js';
import { HookBootError, WorkerHooks } from '../../src/worker/hooks.js';
import type { Logger } from '../../src/logging/logger.js';
import { FakeRuntime, resolution, startMaster, type Harness } from '../helpers/fake-runtime.js';

/** Every call a hook received, by hook name, in order. */
type Calls = Array<[string, unknown]>;

function recording(calls: Calls, names: Array<keyof Hooks>): Hooks {
  const out: Record<string, unknown> = {};
  for (const n of names) out[n] = (e: unknown) => void calls.push([n, e]);
  return out as Hooks;
}

async function serving(cli: Parameters<typeof startMaster>[0], hooks: Hooks): Promise<Harness> {
  const h = await startMaster(cli, hooks);
  for (const c of h.rt.alive(1)) c.ready();
  await h.rt.settle();
  assert.ok(h.notes.includes('READY'));
  return h;
}

const never = () => new Promise<void>(() => {});
const has = (h: Harness, re: RegExp) => h.lines.some((l) => re.test(l));
/** Whether run() has settled, once what is already due has run. */
const state = (h: Harness) => Promise.race([h.result.then(() => 'exited'), new Promise((r) => setImmediate(() => r('waiting')))]);

describe('hooks: the config file\'s value', () => {
  test('absent is none; an object of functions is kept', () => {
    assert.deepEqual(parseHooks(undefined, 'c.mjs'), {});
    const fn = async () => {};
    assert.equal(parseHooks({ workerExited: fn, masterStarted: undefined }, 'c.mjs').workerExited, fn);
  });

  test('anything else is a configuration error (exit 78) naming the hook and the rule', () => {
    const bad: Array<[unknown, RegExp]> = [
      [[], /hooks must be an object of functions .* got an array/],
      [null, /got null/],
      ['x', /got string/],
      [{ onExit: () => {} }, /unknown hook 'onExit' \(hooks are masterStarted, /],
      [{ workerExited: 'log.sh' }, /hooks\.workerExited must be a function .* got string/],
      [{ get masterStarted(): never { throw new Error('boom'); } }, /hooks\.masterStarted cannot be read \(boom\)/],
    ];
    for (const [value, re] of bad) {
      assert.throws(() => parseHooks(value, 'c.mjs'), (err: unknown) => err instanceof CorralError && err.code === 'E_CONFIG_VALUE' && err.exitCode === 78 && re.test(err.message), String(re));
    }
  });

  test('resolveConfig reads hooks from a config file beside the settings; a bad one is refused', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'corral-hooks-'));
    writeFileSync(join(cwd, 'corral.config.mjs'), 'export default { workers: 3, hooks: { workerExited: async () => {} } };\n');
    const r = await resolveConfig({ cli: { app: 'a.mjs' }, env: {}, cwd });
    assert.deepEqual(r.config.workers, { min: 3, max: 3 });
    assert.equal(typeof r.hooks.workerExited, 'function');
    assert.equal(r.config.hookTimeout, 10, 'hook-timeout defaults to 10 s');
    assert.equal(workerHooksSpec(r), undefined, 'no worker-side hook: workers never read the file');
    writeFileSync(join(cwd, 'corral.config.mjs'), 'export default { hooks: { workerStopping() {} } };\n');
    const w = await resolveConfig({ cli: { app: 'a.mjs', hookTimeout: '2.5' }, env: {}, cwd });
    assert.deepEqual(workerHooksSpec(w), { file: join(cwd, 'corral.config.mjs'), timeoutMs: 2500, boot: false });
    writeFileSync(join(cwd, 'corral.config.mjs'), 'export default { hooks: { workerExited: 42 } };\n');
    await assert.rejects(resolveConfig({ cli: { app: 'a.mjs' }, env: {}, cwd }), (err: CorralError) => err.code === 'E_CONFIG_VALUE' && /hooks\.workerExited must be a function/.test(err.message));
  });

  test('defineConfig types each hook\'s event (checked when the tests compile)', () => {
    const config = defineConfig({
      hookTimeout: 5,
      hooks: {
        workerExited: async (e: WorkerExitedEvent, { signal }) => {
          const kind: StopCause['kind'] | undefined = e.stopCause?.kind;
          return [kind, e.reason, e.signal, signal.aborted];
        },
        reloadEnded: (e: ReloadEndedEvent) => (e.result === 'rolled-back' ? e.worker.pid : e.result === 'failed' ? e.code : e.previous),
      },
    });
    assert.deepEqual(Object.keys(parseHooks(config.hooks, 'c.mjs')), ['workerExited', 'reloadEnded']);
  });

  test('a bounded call: a synchronous throw and a rejection are failures; a timeout abandons and aborts', async () => {
    const timers = { setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
    const sync = await callBounded(() => { throw new Error('sync'); }, {}, 1000, timers);
    assert.ok(!sync.ok && !sync.timedOut && (sync.error as Error).message === 'sync');
    const rejected = await callBounded(() => Promise.reject(new Error('async')), {}, 1000, timers);
    assert.ok(!rejected.ok && !rejected.timedOut);
    let signal: AbortSignal | undefined;
    const late = await callBounded((_e, ctx) => { signal = ctx.signal; return never(); }, {}, 20, timers);
    assert.ok(!late.ok && late.timedOut);
    assert.equal(signal?.aborted, true, 'the hook is told it was abandoned');
  });
});

describe('hooks in the master (fake runtime)', { timeout: 20_000 }, () => {
  test('masterStarted runs before the first fork; the fork waits for it to settle', async () => {
    let release!: () => void;
    const seen: unknown[] = [];
    const h = await startMaster({ workers: '2' }, {
      masterStarted: (e) => {
        seen.push(e);
        return new Promise<void>((r) => (release = r));
      },
    });
    assert.equal(h.rt.children.length, 0, 'no worker while masterStarted runs');
    assert.deepEqual(seen, [{ pid: process.pid, listeners: [], workers: 2, configFile: '' }]);
    release();
    await h.rt.settle();
    assert.equal(h.rt.alive(1).length, 2);
  });

  test('masterStarted that never settles is abandoned at hook-timeout (logged E_HOOK_TIMEOUT) and the start goes on', async () => {
    const h = await startMaster({ workers: '1', hookTimeout: '3' }, { masterStarted: never });
    await h.rt.advance(2999);
    assert.equal(h.rt.children.length, 0);
    await h.rt.advance(1);
    assert.equal(h.rt.alive(1).length, 1);
    assert.ok(has(h, /hook masterStarted did not finish within hook-timeout \(3 s\); abandoned, corral goes on \(E_HOOK_TIMEOUT\)/));
  });

  test('masterStarted that throws is logged (E_HOOK_FAILED) and the start goes on', async () => {
    const h = await startMaster({ workers: '1' }, { masterStarted: () => { throw new Error('no database'); } });
    await h.rt.settle();
    assert.equal(h.rt.alive(1).length, 1);
    assert.ok(has(h, /hook masterStarted failed: no database; corral goes on \(E_HOOK_FAILED\)/));
  });

  test('while masterStarted hangs the loop still handles signals: QUIT stops the master without starting a worker', async () => {
    const calls: Calls = [];
    const h = await startMaster({ workers: '1' }, { masterStarted: never, ...recording(calls, ['masterExiting']) });
    h.rt.signal('SIGQUIT');
    await h.rt.settle();
    assert.deepEqual(calls.map(([n]) => n), ['masterExiting'], 'the stop went on while masterStarted hangs');
    // The exit waits for hooks still running (masterStarted) at most hook-timeout.
    await h.rt.advance(10_100);
    assert.equal(await h.result, undefined, 'the master exited');
    assert.equal(h.rt.children.length, 0);
    assert.deepEqual(calls, [['masterExiting', { exitCode: 0, signal: 'SIGQUIT', error: undefined }]]);
  });

  test('generationReady at the first start and after each reload; reloadEnded with each result', async () => {
    const calls: Calls = [];
    const h = await serving({ workers: '2' }, recording(calls, ['generationReady', 'reloadEnded']));
    const pids1 = h.rt.alive(1).map((c) => ({ slot: c.slot, pid: c.pid }));
    assert.deepEqual(calls, [['generationReady', { generation: 1, reload: undefined, previous: undefined, workers: pids1 }]]);
    calls.length = 0;

    h.rt.signal('SIGHUP');
    await h.rt.settle();
    for (const c of h.rt.alive(2)) c.ready();
    await h.rt.settle();
    const pids2 = h.rt.alive(2).map((c) => ({ slot: c.slot, pid: c.pid }));
    assert.deepEqual(calls, [
      ['generationReady', { generation: 2, reload: 1, previous: 1, workers: pids2 }],
      ['reloadEnded', { reload: 1, result: 'succeeded', generation: 2, previous: 1 }],
    ]);
    calls.length = 0;

    h.nextReload = () => Promise.reject(new CorralError('E_CONFIG_VALUE', 'workers (from config file c.mjs): "x" is not valid'));
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    assert.deepEqual(calls, [['reloadEnded', {
      reload: 2, result: 'failed', reason: 'configuration invalid: workers (from config file c.mjs): "x" is not valid', code: 'E_CONFIG_VALUE', serving: 2,
    }]]);
    calls.length = 0;

    h.nextReload = undefined;
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const [bad] = h.rt.alive(3);
    bad!.say({ t: 'boot-failed', kind: 'init', message: 'app init failed: no redis' });
    bad!.die(3, null);
    await h.rt.settle();
    const ended = calls.filter(([n]) => n === 'reloadEnded').map(([, e]) => e as { reason: string });
    assert.equal(ended.length, 1);
    const { reason, ...rest } = ended[0]!;
    assert.deepEqual(rest, { reload: 3, result: 'rolled-back', generation: 3, serving: 2, worker: { slot: bad!.slot, pid: bad!.pid } });
    assert.match(reason, /app init failed: no redis/);
  });

  test('workerExited receives the typed cause, the metric\'s reason, the code and the signal', async () => {
    const calls: Calls = [];
    const h = await serving({ workers: '2' }, recording(calls, ['workerExited']));
    const [a, b] = h.rt.alive(1);
    a!.die(null, 'SIGKILL');
    await h.rt.settle();
    assert.deepEqual(calls, [['workerExited', {
      generation: 1, slot: a!.slot, pid: a!.pid, reason: 'crash', stopCause: undefined, retireCause: undefined,
      exitedWhile: 'ready', bootFailure: undefined, code: null, signal: 'SIGKILL', killedBy: undefined,
    }]]);
    calls.length = 0;
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    for (const c of h.rt.alive(2)) c.ready();
    await h.rt.settle();
    const exitB = calls.find(([, e]) => (e as { pid: number }).pid === b!.pid)?.[1];
    assert.deepEqual(exitB, {
      generation: 1, slot: b!.slot, pid: b!.pid, reason: 'reload', stopCause: { kind: 'reload', gen: 2 }, retireCause: undefined,
      exitedWhile: 'draining', bootFailure: undefined, code: 0, signal: null, killedBy: undefined,
    });
  });

  test('calls of one hook run one at a time, in order; a call that never settles is abandoned and the next runs', async () => {
    const started: number[] = [];
    const h = await serving({ workers: '3', hookTimeout: '5' }, {
      workerExited: (e) => {
        started.push(e.pid);
        return never();
      },
    });
    const [a, b, c] = h.rt.alive(1);
    a!.die(1, null);
    b!.die(1, null);
    c!.die(1, null);
    await h.rt.settle();
    assert.deepEqual(started, [a!.pid], 'the second call waits for the first');
    await h.rt.advance(5000);
    assert.deepEqual(started, [a!.pid, b!.pid]);
    await h.rt.advance(5000);
    assert.deepEqual(started, [a!.pid, b!.pid, c!.pid]);
    assert.equal(h.lines.filter((l) => /E_HOOK_TIMEOUT/.test(l)).length, 2);
  });

  test('a hook that hangs never stalls the loop: a reload is handled while it runs', async () => {
    const h = await serving({ workers: '1' }, { generationReady: never, workerExited: never });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    for (const c of h.rt.alive(2)) c.ready();
    await h.rt.settle();
    assert.ok(has(h, /reload #1 done/));
    assert.equal(h.rt.alive(1).length, 0, 'the old generation drained and exited');
  });

  test('more than 100 calls of a slow hook pending: the newest are dropped and logged (E_HOOK_BACKLOG)', async () => {
    const rt = new FakeRuntime();
    const lines: string[] = [];
    const record = (...args: unknown[]) => lines.push(String(args.find((a) => typeof a === 'string') ?? ''));
    const log = { warn: record, error: record } as unknown as Logger;
    const started: number[] = [];
    const r = { ...(await resolution({ hookTimeout: '1' })), hooks: { workerExited: (e) => { started.push(e.pid); return never(); } } as Hooks };
    const hooks = new MasterHooks(log, rt, r);
    const event = (pid: number) => ({ pid }) as HookEvent<'workerExited'>;
    for (let pid = 0; pid < MAX_WAITING + 3; pid++) void hooks.run('workerExited', event(pid));
    await rt.settle();
    assert.deepEqual(started, [0]);
    assert.equal(lines.filter((l) => /E_HOOK_BACKLOG/.test(l)).length, 3, '100 calls pending (the first of them running), 3 dropped');
    await rt.advance(1000);
    assert.deepEqual(started, [0, 1], 'the queue moves on as each call is abandoned');
  });

  test('masterExiting: the exit waits for it (and for workerExited calls still running), at most hook-timeout', async () => {
    const calls: Calls = [];
    const h = await serving({ workers: '1', hookTimeout: '4' }, { ...recording(calls, ['workerExited']), masterExiting: (e) => { calls.push(['masterExiting', e]); return never(); } });
    h.rt.signal('SIGTERM');
    await h.rt.settle();
    assert.deepEqual(calls.map(([n]) => n), ['workerExited', 'masterExiting'], 'workers first, then the master');
    assert.deepEqual(calls[1]![1], { exitCode: 0, signal: 'SIGTERM', error: undefined });
    assert.equal(await state(h), 'waiting', 'the exit waits for masterExiting');
    h.rt.signal('SIGINT');
    await h.rt.advance(3000);
    assert.equal(await state(h), 'waiting', 'a signal during the hook changes nothing');
    await h.rt.advance(1100);
    assert.equal(await state(h), 'exited');
    assert.ok(has(h, /hook masterExiting did not finish within hook-timeout \(4 s\)/));
  });

  test('masterExiting after a failed start has the exit code and the error\'s code', async () => {
    const calls: Calls = [];
    const h = await startMaster({ workers: '1' }, recording(calls, ['masterExiting']));
    h.rt.children[0]!.say({ t: 'boot-failed', kind: 'load', message: 'app module /x.mjs does not exist' });
    h.rt.children[0]!.die(4, null);
    await h.rt.settle();
    assert.equal((await h.result as CorralError).exitCode, 4);
    assert.deepEqual(calls, [['masterExiting', { exitCode: 4, signal: undefined, error: { code: 'E_APP_LOAD', message: 'app module /x.mjs does not exist' } }]]);
  });

  test('a reload swaps the hooks once its generation serves; a rolled-back one keeps the old hooks', async () => {
    const calls: Calls = [];
    const h = await serving({ workers: '1' }, { workerExited: () => void calls.push(['old', null]) });
    const next = { ...(await resolution({ workers: '1' })), hooks: { workerExited: () => void calls.push(['new', null]) } as Hooks };
    h.nextReload = () => Promise.resolve(next);
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const [bad] = h.rt.alive(2);
    bad!.die(1, null);
    await h.rt.settle();
    assert.deepEqual(calls, [['old', null]], 'rolled back: the old hooks stay');
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    for (const c of h.rt.alive(3)) c.ready();
    await h.rt.settle();
    assert.deepEqual(calls.slice(1), [['new', null]], 'the old worker\'s exit after a successful reload goes to the new hooks');
  });
  test('the stop budget counts hook-timeout when master hooks exist (the exit waits for them)', async () => {
    const base = await resolution({ gracefulTimeout: '30', stopBudget: '35', hookTimeout: '5' });
    assert.equal(stopBudgetWarning(base), undefined, 'no hooks: 30 + 2 fits 35');
    const warning = stopBudgetWarning({ ...base, hooks: { masterExiting: () => {} } });
    assert.match(warning ?? '', /graceful-timeout \(30 s\) \+ hook-timeout \(5 s, the exit waits for hooks\) \+ 2 s to exit do not fit the stop budget \(35 s.*at least 37 s.*or hook-timeout$/);
    assert.equal(stopBudgetWarning({ ...base, hooks: { workerStopping: () => {} } }), undefined, 'a worker hook runs within graceful-timeout');
  });
});

describe('hooks in a worker', () => {
  const quiet = () => {
    const lines: string[] = [];
    const record = (...args: unknown[]) => lines.push(String(args.find((a) => typeof a === 'string') ?? ''));
    return { lines, log: { debug: record, info: record, warn: record, error: record, fatal: record } as unknown as Logger };
  };
  const configWith = (body: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-whooks-'));
    const file = join(dir, 'corral.config.mjs');
    writeFileSync(file, body);
    return file;
  };

  test('workerBoot receives its generation, slot and pid; a throw or a timeout is a failed boot', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'corral-whooks-')), 'seen.json');
    const ok = configWith(`import { writeFileSync } from 'node:fs';\nexport default { hooks: { workerBoot: (e) => writeFileSync(${JSON.stringify(out)}, JSON.stringify(e)) } };\n`);
    const { log } = quiet();
    await new WorkerHooks({ file: ok, timeoutMs: 1000, boot: true }, { generation: 2, slot: 3 }, log).boot();
    const { readFileSync } = await import('node:fs');
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), { generation: 2, slot: 3, pid: process.pid });
    const throws = configWith('export default { hooks: { workerBoot: async () => { throw new Error("no secrets"); } } };\n');
    await assert.rejects(new WorkerHooks({ file: throws, timeoutMs: 1000, boot: true }, { generation: 1, slot: 1 }, log).boot(), (err: Error) => err instanceof HookBootError && /workerBoot hook failed \(E_HOOK_FAILED\): no secrets/.test(err.message));
    const hangs = configWith('export default { hooks: { workerBoot: () => new Promise(() => {}) } };\n');
    await assert.rejects(new WorkerHooks({ file: hangs, timeoutMs: 50, boot: true }, { generation: 1, slot: 1 }, log).boot(), (err: Error) => /within hook-timeout \(0\.05 s\) \(E_HOOK_TIMEOUT\)/.test(err.message));
    const broken = configWith('export default { hooks: { workerBoot: 1 } };\n');
    await assert.rejects(new WorkerHooks({ file: broken, timeoutMs: 50, boot: true }, { generation: 1, slot: 1 }, log).boot(), (err: Error) => /config file cannot be loaded in the worker/.test(err.message));
  });

  test('workerStopping receives the drain reason; its failure is logged and never rejects', async () => {
    const { lines, log } = quiet();
    const throws = configWith('export default { hooks: { workerStopping: (e) => { throw new Error("bye " + e.reason); } } };\n');
    await new WorkerHooks({ file: throws, timeoutMs: 1000, boot: false }, { generation: 1, slot: 1 }, log).stopping('scale-down');
    assert.ok(lines.some((l) => /hook workerStopping failed: bye scale-down; the drain goes on \(E_HOOK_FAILED\)/.test(l)));
    const hangs = configWith('export default { hooks: { workerStopping: () => new Promise(() => {}) } };\n');
    await new WorkerHooks({ file: hangs, timeoutMs: 50, boot: false }, { generation: 1, slot: 1 }, log).stopping('reload');
    assert.ok(lines.some((l) => /did not finish within hook-timeout .* \(E_HOOK_TIMEOUT\)/.test(l)));
  });
});
