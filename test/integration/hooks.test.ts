import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

interface Line {
  hook: string;
  pid: number;
  event: Record<string, unknown>;
}

/** A config file whose every hook appends `{ hook, pid, event }` as one JSON line to events.jsonl. */
function recordingConfig(extra = ''): { dir: string; config: string; events: string } {
  const dir = mkdtempSync(join(tmpdir(), 'corral-hooks-'));
  const events = join(dir, 'events.jsonl');
  const config = join(dir, 'corral.config.mjs');
  const names = ['masterStarted', 'generationReady', 'reloadEnded', 'workerExited', 'masterExiting', 'workerBoot', 'workerStopping'];
  writeFileSync(config, `import { appendFileSync } from 'node:fs';
const note = (hook) => async (event) => { appendFileSync(${JSON.stringify(events)}, JSON.stringify({ hook, pid: process.pid, event }) + '\\n'); };
export default { hooks: { ${names.map((n) => `${n}: note('${n}')`).join(', ')} }${extra} };
`);
  return { dir, config, events };
}

function read(events: string): Line[] {
  if (!existsSync(events)) return [];
  return readFileSync(events, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
}

/** Polls the events file until `pred` holds (or fails with what it holds). */
async function until(events: string, pred: (lines: Line[]) => boolean, what: string, timeoutMs = 15_000): Promise<Line[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const lines = read(events);
    if (pred(lines)) return lines;
    if (Date.now() > end) throw new Error(`${what}: not seen within ${timeoutMs} ms; events:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const of = (lines: Line[], hook: string) => lines.filter((l) => l.hook === hook);

async function serve(config: string, workers: number, extra: string[] = []): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--config', config, '--bind', `127.0.0.1:${port}`, '--workers', String(workers), '--access-log', 'off', ...extra, app('hello.mjs')]);
  started.push(c);
  await c.waitReady();
  return { c, port };
}

describe('lifecycle hooks with the real CLI', () => {
  test('start, HUP, a worker killed with SIGKILL, QUIT: each hook runs in its process with its facts', async () => {
    const { config, events } = recordingConfig();
    const { c, port } = await serve(config, 2);

    // Start: masterStarted in the master, before any worker; each worker's workerBoot; generationReady.
    let lines = await until(events, (l) => of(l, 'generationReady').length === 1, 'generationReady at start');
    assert.equal(lines[0]!.hook, 'masterStarted', 'masterStarted comes before the first fork');
    assert.equal(lines[0]!.pid, c.pid);
    assert.deepEqual(lines[0]!.event, { pid: c.pid, listeners: [`127.0.0.1:${port}`], workers: 2, configFile: config });
    const boots = of(lines, 'workerBoot');
    const gen1 = await c.workerPids();
    assert.deepEqual(boots.map((b) => b.pid).sort(), [...gen1].sort(), 'workerBoot runs in each worker');
    assert.deepEqual(boots.map((b) => b.event.slot).sort(), [1, 2]);
    for (const b of boots) assert.deepEqual(b.event, { generation: 1, slot: b.event.slot, pid: b.pid });
    const ready1 = of(lines, 'generationReady')[0]!;
    assert.equal(ready1.pid, c.pid);
    assert.deepEqual(ready1.event.generation, 1);
    assert.equal(ready1.event.reload, undefined);
    assert.deepEqual((ready1.event.workers as Array<{ pid: number }>).map((w) => w.pid).sort(), [...gen1].sort());
    assert.equal((await get({ port })).status, 200);

    // HUP: a new generation, the old one told to stop (reason reload) and reaped with its typed cause.
    const r = await runCli(['reload', '--wait', String(c.pid)]);
    assert.equal(r.code, 0, r.output);
    lines = await until(events, (l) => of(l, 'workerExited').length === 2 && of(l, 'reloadEnded').length === 1, 'the reload\'s hooks');
    assert.deepEqual(of(lines, 'reloadEnded')[0]!.event, { reload: 1, result: 'succeeded', generation: 2, previous: 1 });
    const ready2 = of(lines, 'generationReady')[1]!;
    assert.deepEqual([ready2.event.generation, ready2.event.reload, ready2.event.previous], [2, 1, 1]);
    const stopping = of(lines, 'workerStopping');
    assert.deepEqual(stopping.map((s) => s.pid).sort(), [...gen1].sort(), 'workerStopping runs in each old worker');
    assert.ok(stopping.every((s) => s.event.reason === 'reload' && s.event.generation === 1));
    for (const e of of(lines, 'workerExited')) {
      assert.equal(e.pid, c.pid, 'workerExited runs in the master');
      assert.ok(gen1.includes(e.event.pid as number));
      assert.deepEqual({ reason: e.event.reason, stopCause: e.event.stopCause, exitedWhile: e.event.exitedWhile, code: e.event.code, signal: e.event.signal },
        { reason: 'reload', stopCause: { kind: 'reload', gen: 2 }, exitedWhile: 'draining', code: 0, signal: null });
    }

    // A worker killed with SIGKILL from outside: a crash, with the signal and no decided cause.
    const [victim] = await c.workerPids();
    process.kill(victim!, 'SIGKILL');
    lines = await until(events, (l) => of(l, 'workerExited').some((e) => e.event.pid === victim), 'workerExited of the killed worker');
    const crash = of(lines, 'workerExited').find((e) => e.event.pid === victim)!;
    assert.deepEqual({ reason: crash.event.reason, stopCause: crash.event.stopCause, exitedWhile: crash.event.exitedWhile, code: crash.event.code, signal: crash.event.signal, generation: crash.event.generation },
      { reason: 'crash', stopCause: undefined, exitedWhile: 'ready', code: null, signal: 'SIGKILL', generation: 2 });
    await until(events, (l) => of(l, 'workerBoot').length === 5, 'the replacement\'s workerBoot');

    // QUIT: every worker drains (reason shutdown), then masterExiting in the master, once
    // every worker has exited. The last workerExited calls may still be running beside it
    // (each hook has its own queue); the exit waits for both.
    const before = read(events).length;
    await new Promise((r) => setTimeout(r, 500));
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    lines = read(events);
    const stop = lines.slice(before);
    const exiting = of(stop, 'masterExiting');
    assert.equal(exiting.length, 1, stop.map((l) => l.hook).join(' '));
    assert.equal(exiting[0]!.pid, c.pid);
    assert.deepEqual(exiting[0]!.event, { exitCode: 0, signal: 'SIGQUIT' });
    const at = stop.indexOf(exiting[0]!);
    // (so every workerStopping came before it)
    assert.ok(stop.slice(at + 1).every((l) => l.hook === 'workerExited'), `after masterExiting only workerExited calls still queued: ${stop.map((l) => l.hook).join(' ')}`);
    assert.ok(of(stop, 'workerStopping').length >= 2 && of(stop, 'workerStopping').every((s) => s.event.reason === 'shutdown'));
    assert.ok(of(stop, 'workerExited').length >= 2 && of(stop, 'workerExited').every((e) => e.event.reason === 'shutdown'));
  });

  test('with a masterStarted hook no worker starts before it settles: only the workers the master started load the app', async () => {
    const { dir, events } = recordingConfig();
    // A masterStarted that takes a second (a migration, say), and says when it is over.
    const config = join(dir, 'slow-start.config.mjs');
    writeFileSync(config, `import { appendFileSync } from 'node:fs';
const note = (hook) => appendFileSync(${JSON.stringify(events)}, JSON.stringify({ hook, pid: process.pid, event: {} }) + '\\n');
export default { hooks: {
  masterStarted: async () => { note('masterStarted'); await new Promise((r) => setTimeout(r, 1000)); note('masterStartedDone'); },
  workerBoot: () => note('workerBoot'),
  generationReady: () => note('generationReady'),
} };
`);
    const port = await freePort();
    const c = new Corral(['--config', config, '--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', app('records-load.mjs')], { env: { LOAD_RECORD: events } });
    started.push(c);
    await c.waitReady();
    const lines = await until(events, (l) => of(l, 'generationReady').length === 1, 'generationReady at start');
    const order = lines.map((l) => l.hook);
    assert.deepEqual(order.slice(0, 2), ['masterStarted', 'masterStartedDone'], `nothing before the hook is over: ${order.join(' ')}`);
    const loads = of(lines, 'appLoaded').map((l) => l.pid).sort();
    assert.deepEqual(loads, of(lines, 'workerBoot').map((l) => l.pid).sort(), 'each process that loaded the app ran workerBoot: none was started another way');
    assert.deepEqual(loads, (await c.workerPids()).sort());
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('hooks that throw or never settle are logged with their codes and never stop or stall the master', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-hooks-'));
    const config = join(dir, 'corral.config.mjs');
    writeFileSync(config, `export default { hooks: {
  masterStarted() { throw new Error('no database'); },
  generationReady: () => new Promise(() => {}),
  workerExited: () => new Promise(() => {}),
  masterExiting: () => new Promise(() => {}),
  workerStopping() { throw new Error('cannot say goodbye'); },
} };
`);
    const { c, port } = await serve(config, 1, ['--hook-timeout', '1']);
    await c.waitForLine(/hook masterStarted failed: no database; corral goes on \(E_HOOK_FAILED\)/);
    await c.waitForLine(/hook generationReady did not finish within hook-timeout \(1 s\).*E_HOOK_TIMEOUT/);
    const r = await runCli(['reload', '--wait', String(c.pid)]);
    assert.equal(r.code, 0, 'a reload is done while hooks hang');
    await c.waitForLine(/hook workerStopping failed: cannot say goodbye; the drain goes on \(E_HOOK_FAILED\)/);
    assert.equal((await get({ port })).status, 200);
    const t0 = Date.now();
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit(15_000)).code, 0);
    assert.ok(Date.now() - t0 < 10_000, 'the exit waited for masterExiting about one hook-timeout, not forever');
    assert.match(c.output, /hook masterExiting did not finish within hook-timeout/);
  });

  test('a config file whose hooks is not an object of functions: exit 78 at start, the reload refused at HUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-hooks-'));
    const config = join(dir, 'corral.config.mjs');
    writeFileSync(config, 'export default { hooks: { workerExited: "notify.sh" } };\n');
    const port = await freePort();
    const bad = await runCli(['--config', config, '--bind', `127.0.0.1:${port}`, '--workers', '1', app('hello.mjs')]);
    assert.equal(bad.code, 78, bad.output);
    assert.match(bad.output, /E_CONFIG_VALUE: config file .*corral\.config\.mjs: hooks\.workerExited must be a function \(sync or async\); got string/);

    const { config: good, events } = recordingConfig();
    const { c } = await serve(good, 1);
    writeFileSync(good, 'export default { hooks: [] };\n');
    const refused = await runCli(['reload', '--wait', String(c.pid)]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /configuration invalid: .*hooks must be an object of functions/);
    await until(events, (l) => of(l, 'reloadEnded').some((e) => e.event.result === 'failed'), 'reloadEnded (failed) from the hooks still in force');
    // A HUP re-reads the hooks: the next reload's hooks come from the edited file.
    const marker = join(dir, 'new-hook');
    writeFileSync(good, `import { writeFileSync } from 'node:fs';\nexport default { hooks: { reloadEnded: (e) => writeFileSync(${JSON.stringify(marker)}, e.result) } };\n`);
    const ok = await runCli(['reload', '--wait', String(c.pid)]);
    assert.equal(ok.code, 0, ok.output);
    const end = Date.now() + 5000;
    while (!existsSync(marker) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(readFileSync(marker, 'utf8'), 'succeeded');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('a workerBoot hook that throws is a failed boot: exit 3 at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-hooks-'));
    const config = join(dir, 'corral.config.mjs');
    writeFileSync(config, 'export default { hooks: { workerBoot() { throw new Error("vault unreachable"); } } };\n');
    const port = await freePort();
    const r = await runCli(['--config', config, '--bind', `127.0.0.1:${port}`, '--workers', '1', app('hello.mjs')], { timeoutMs: 30_000 });
    assert.equal(r.code, 3, r.output);
    assert.match(r.output, /workerBoot hook failed \(E_HOOK_FAILED\): vault unreachable/);
    assert.match(r.output, /E_WORKER_BOOT/);
  });
});
