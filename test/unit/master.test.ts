import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CorralError } from '../../src/errors.js';
import { Balancer } from '../../src/master/balance.js';
import { exitOutcome, type RetireCause, type StopCause } from '../../src/master/exit-cause.js';
import { Generation } from '../../src/master/generation.js';
import { WorkerHandle } from '../../src/master/worker-handle.js';
import { FakeRuntime, resolution, startMaster, type FakeChild, type Harness } from '../helpers/fake-runtime.js';

/** Starts a master and makes its first generation ready. */
async function serving(cli: Parameters<typeof startMaster>[0] = {}): Promise<Harness> {
  const h = await startMaster(cli);
  for (const c of h.rt.alive(1)) c.ready();
  await h.rt.settle();
  assert.ok(h.notes.includes('READY'), 'READY=1 once the first generation is ready');
  return h;
}

const servingCount = (h: Harness) => h.rt.alive().filter((c) => !c.got('drain') && !c.got('stop')).length;

describe('Master driven without processes', { timeout: 20_000 }, () => {
  test('start: one worker per slot; READY=1 only when every worker of generation 1 is ready', async () => {
    const h = await startMaster({ workers: '3' });
    assert.deepEqual(h.rt.alive(1).map((c) => c.slot), [1, 2, 3]);
    h.rt.children[0]!.ready();
    h.rt.children[1]!.ready();
    await h.rt.settle();
    assert.ok(!h.notes.includes('READY'));
    h.rt.children[2]!.ready();
    await h.rt.settle();
    assert.ok(h.notes.includes('READY'));
  });

  test('exit 4 at start: an app that cannot load stops the master at once', async () => {
    const h = await startMaster();
    const [a] = h.rt.children;
    a!.say({ t: 'boot-failed', kind: 'load', message: 'app module /x.mjs does not exist' });
    a!.die(4, null);
    await h.rt.settle();
    const err = await h.result;
    assert.ok(err instanceof CorralError);
    assert.equal(err.code, 'E_APP_LOAD');
    assert.equal(err.exitCode, 4);
    assert.equal(h.rt.children.length, 2, 'no respawn loop');
  });

  test('exit 4 at start with the code the worker named; a second worker failing on its own is a failed boot too', async () => {
    const h = await startMaster({ workers: '2' });
    const [a, b] = h.rt.children;
    b!.exitOnStop = false; // still loading the same broken app: it fails before it hears the stop
    a!.say({ t: 'boot-failed', kind: 'load', message: 'app module /x.mjs: default export is a number (42)', code: 'E_APP_SHAPE' });
    a!.die(4, null);
    await h.rt.settle();
    assert.ok(b!.got('stop'), 'the rest of the generation is stopped');
    b!.say({ t: 'boot-failed', kind: 'load', message: 'app module /x.mjs: default export is a number (42)', code: 'E_APP_SHAPE' });
    b!.die(4, null);
    await h.rt.settle();
    const err = await h.result;
    assert.equal((err as CorralError).code, 'E_APP_SHAPE');
    assert.equal((err as CorralError).exitCode, 4);
    const exits = h.lines.filter((l) => /\(gen 1 #\d\) /.test(l) && !l.startsWith('spawned'));
    assert.equal(exits.filter((l) => /failed to boot: exited with code 4 \(app could not be loaded\): app module \/x\.mjs: default export is a number/.test(l)).length, 2, exits.join('\n'));
    assert.ok(!h.lines.some((l) => /while serving/.test(l)), h.lines.join('\n'));
    assert.match(h.master.metrics.text(), /corral_worker_exits_total\{reason="crash"\} 2\n/);
  });

  test('a code a worker names that is not an app-load code is not trusted', async () => {
    const h = await startMaster({ workers: '1' });
    h.rt.children[0]!.say({ t: 'boot-failed', kind: 'load', message: 'x', code: 'E_CONFIG_VALUE' });
    h.rt.children[0]!.die(4, null);
    await h.rt.settle();
    assert.equal(((await h.result) as CorralError).code, 'E_APP_LOAD');
  });

  test('exit 4 from the exit code alone, when the boot-failed message was lost', async () => {
    const h = await startMaster();
    h.rt.children[0]!.die(4, null);
    await h.rt.settle();
    const err = await h.result;
    assert.equal((err as CorralError).exitCode, 4);
  });

  test('exit 78 at start when the workers cannot listen on the sockets (no restart loop)', async () => {
    const h = await startMaster();
    const [a] = h.rt.children;
    a!.say({ t: 'boot-failed', kind: 'listen', message: 'cannot listen: listen EINVAL: invalid argument' });
    a!.die(3, null);
    await h.rt.settle();
    const err = await h.result;
    assert.equal((err as CorralError).code, 'E_BIND_FAILED');
    assert.equal((err as CorralError).exitCode, 78);
  });

  test('exit 3 at start: three failed boots of a slot, with back-off between them', async () => {
    const h = await startMaster({ workers: '1' });
    h.rt.children[0]!.die(1, null);
    await h.rt.settle();
    assert.equal(h.rt.children.length, 1, 'not respawned before the back-off');
    await h.rt.advance(500);
    assert.equal(h.rt.children.length, 2);
    h.rt.children[1]!.die(1, null);
    await h.rt.advance(999);
    assert.equal(h.rt.children.length, 2, 'the back-off doubles');
    await h.rt.advance(1);
    assert.equal(h.rt.children.length, 3);
    h.rt.children[2]!.die(1, null);
    await h.rt.settle();
    const err = await h.result;
    assert.equal((err as CorralError).code, 'E_WORKER_BOOT');
    assert.equal((err as CorralError).exitCode, 3);
  });

  test('reload: the new generation starts, the old one drains only once every new worker is ready', async () => {
    const h = await serving();
    const old = h.rt.alive(1);
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    assert.ok(h.notes.includes('RELOADING'));
    const fresh = h.rt.alive(2);
    assert.equal(fresh.length, 2);
    fresh[0]!.ready();
    await h.rt.settle();
    assert.ok(old.every((c) => !c.got('drain')), 'nothing drained while the new generation is not complete');
    fresh[1]!.ready();
    await h.rt.settle();
    assert.ok(old.every((c) => c.got('drain')), 'the old generation drains');
    assert.ok(old.every((c) => c.exited));
    assert.equal(h.notes.filter((n) => n === 'READY').length, 2, 'READY=1 again after the reload');
    assert.ok(h.lines.some((l) => /reload #1 done/.test(l)));
  });

  test('reload with a boot failure: the old generation keeps serving and the reload is reported failed', async () => {
    const h = await serving();
    const old = h.rt.alive(1);
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const [bad, other] = h.rt.alive(2);
    bad!.say({ t: 'boot-failed', kind: 'load', message: 'SyntaxError: Unexpected token' });
    bad!.die(4, null);
    await h.rt.settle();
    assert.ok(old.every((c) => !c.exited && !c.got('drain')), 'the old generation still serves');
    assert.ok(other!.got('drain'), 'the rest of the failed generation is drained');
    assert.ok(h.lines.some((l) => /reload #1 failed, previous generation keeps serving: .*SyntaxError/.test(l)));
    assert.ok(h.notes.some((n) => /last reload: FAILED/.test(n)));
    assert.equal(await Promise.race([h.result, Promise.resolve('running')]), 'running', 'the master keeps running');
  });

  test('reload timeout: a new worker never ready is killed at boot-timeout and the reload fails', async () => {
    const h = await serving({ bootTimeout: '5', timeout: '0' });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const fresh = h.rt.alive(2);
    await h.rt.advance(5001);
    assert.ok(fresh.some((c) => c.signals.includes('SIGKILL')), 'killed after boot-timeout');
    assert.ok(h.lines.some((l) => /not ready after 5 s \(boot-timeout\)/.test(l)));
    assert.ok(h.lines.some((l) => /reload #1 failed/.test(l)));
    assert.equal(h.rt.alive(1).length, 2);
  });

  test('reload whose configuration read fails: it fails, and the next one works', async () => {
    const h = await serving();
    h.nextReload = () => Promise.reject(new Error('config file x cannot be loaded: timed out'));
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    assert.ok(h.lines.some((l) => /reload #1 failed.*timed out/.test(l)));
    h.nextReload = undefined;
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    for (const c of h.rt.alive(2)) c.ready();
    await h.rt.settle();
    assert.ok(h.lines.some((l) => /reload #2 done/.test(l)));
  });

  test('HUP during a reload is queued: a second reload follows the first', async () => {
    const h = await serving();
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    assert.ok(h.lines.some((l) => /a reload is already under way; another follows it/.test(l)));
    assert.equal(h.rt.alive(3).length, 0, 'not at the same time');
    for (const c of h.rt.alive(2)) c.ready();
    await h.rt.settle();
    assert.equal(h.reloads, 2);
    assert.equal(h.rt.alive(3).length, 2, 'the queued reload started generation 3');
  });

  test('max-requests recycling: the replacement starts first; capacity never dips', async () => {
    const h = await serving({ workers: '2' });
    const [a] = h.rt.alive(1);
    a!.say({ t: 'retire', reason: 'max-requests' });
    await h.rt.settle();
    const replacement = h.rt.children.at(-1)!;
    assert.equal(replacement.slot, a!.slot);
    assert.ok(!a!.got('drain'), 'the retiring worker serves until its replacement is ready');
    assert.equal(servingCount(h), 3);
    replacement.ready();
    await h.rt.settle();
    assert.ok(a!.got('drain'));
    assert.equal(servingCount(h), 2);
  });

  test('the drain message tells each worker why, for its app\'s signal: recycle, reload, scale-down, shutdown', async () => {
    const h = await serving({ workers: '2', maxMemory: '100M' });
    const reasonOf = (c: { sent: Array<{ t: string; reason?: string }> }) => c.sent.find((m) => m.t === 'drain')?.reason;
    const [a, b] = h.rt.alive(1);
    a!.say({ t: 'retire', reason: 'max-requests' });
    await h.rt.settle();
    h.rt.children.at(-1)!.ready();
    await h.rt.settle();
    assert.equal(reasonOf(a!), 'recycle', 'max-requests');
    b!.say({ t: 'hb', rss: 50 * 1048576, inflight: 0 });
    b!.say({ t: 'hb', rss: 200 * 1048576, inflight: 0 });
    await h.rt.advance(1000);
    h.rt.children.at(-1)!.ready();
    await h.rt.settle();
    assert.equal(reasonOf(b!), 'recycle', 'max-memory');
    const serving1 = h.rt.alive(1).filter((c) => !c.got('drain'));
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    for (const c of h.rt.alive(2)) c.ready();
    await h.rt.settle();
    assert.deepEqual(serving1.map(reasonOf), ['reload', 'reload']);
    const gen2 = h.rt.alive(2);
    h.rt.signal('SIGTTOU');
    await h.rt.settle();
    assert.deepEqual(gen2.map(reasonOf).filter(Boolean), ['scale-down']);
    h.rt.signal('SIGQUIT');
    await h.rt.settle();
    assert.equal(reasonOf(gen2.find((c) => reasonOf(c) !== 'scale-down')!), 'shutdown');
  });

  test('a booting worker that asks to be replaced (uncaught exception in init) is killed and counted as a failed boot', async () => {
    const h = await startMaster({ workers: '1' });
    const first = h.rt.children[0]!;
    first.say({ t: 'retire', reason: 'uncaught exception' });
    first.ready(); // init went on and finished: it must not serve
    await h.rt.settle();
    assert.ok(first.signals.includes('SIGKILL'), 'killed at once');
    assert.ok(!h.notes.includes('READY'), 'it never counted as ready');
    assert.ok(h.lines.some((l) => /asks to be replaced \(uncaught exception\) before it was ready; killing it/.test(l)), h.lines.join('\n'));
    assert.equal(h.rt.children.length, 1, 'the usual back-off before the next boot');
    await h.rt.advance(500);
    const second = h.rt.children[1]!;
    second.ready();
    await h.rt.settle();
    assert.ok(h.notes.includes('READY'), 'the replacement serves');
    assert.match(h.master.metrics.text(), /corral_worker_exits_total\{reason="crash"\} 1\n/);
  });

  test('at start, an init that keeps throwing gives up with exit 3 instead of serving a broken worker', async () => {
    const h = await startMaster({ workers: '1' });
    for (let i = 0; i < 3; i++) {
      h.rt.children[i]!.say({ t: 'retire', reason: 'uncaught exception' });
      await h.rt.advance(500 * 2 ** i);
    }
    const err = await h.result;
    assert.equal((err as CorralError).code, 'E_WORKER_BOOT');
    assert.match((err as CorralError).message, /asked to be replaced before it was ready \(uncaught exception\)/);
  });

  test('at a reload, a new worker that asks to be replaced while booting fails the reload; the old generation serves on', async () => {
    const h = await serving({ workers: '2' });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const [a, b] = h.rt.alive(2);
    b!.ready();
    a!.say({ t: 'retire', reason: 'uncaught exception' });
    await h.rt.settle();
    assert.ok(h.lines.some((l) => /reload #1 failed, previous generation keeps serving: .*asked to be replaced before it was ready/.test(l)), h.lines.join('\n'));
    assert.equal(h.rt.alive(2).length, 0);
    assert.ok(h.rt.alive(1).every((c) => !c.got('drain')));
  });

  test('a ready worker of a generation still booting (a reload) may ask to be replaced too', async () => {
    const h = await serving({ workers: '2' });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const [a, b] = h.rt.alive(2);
    a!.ready();
    a!.say({ t: 'retire', reason: 'max-requests' });
    await h.rt.settle();
    const replacement = h.rt.children.at(-1)!;
    assert.equal(replacement.gen, 2);
    assert.equal(replacement.slot, a!.slot, 'its replacement boots');
    b!.ready();
    replacement.ready();
    await h.rt.settle();
    assert.ok(a!.got('drain'));
    assert.ok(h.lines.some((l) => /reload #1 done/.test(l)));
  });

  test('the exit metric is labelled from the recorded cause: max-requests, then a reload', async () => {
    const h = await serving({ workers: '1' });
    h.rt.alive(1)[0]!.say({ t: 'retire', reason: 'max-requests' });
    await h.rt.settle();
    h.rt.children.at(-1)!.ready();
    await h.rt.settle();
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    h.rt.alive(2)[0]!.ready();
    await h.rt.settle();
    const text = h.master.metrics.text();
    assert.match(text, /corral_worker_exits_total\{reason="max_requests"\} 1\n/);
    assert.match(text, /corral_worker_exits_total\{reason="reload"\} 1\n/);
    assert.ok(h.lines.some((l) => /stopped \(replaced \(max-requests\)\)/.test(l)));
    assert.ok(h.lines.some((l) => /stopped \(replaced by generation 2\)/.test(l)));
  });

  test('"ready" is counted once: STATUS= and /readyz agree, a draining worker counts in neither', async () => {
    const h = await serving({ workers: '2' });
    const [, b] = h.rt.alive(1);
    b!.exitOnStop = false;
    h.rt.signal('SIGTTOU');
    await h.rt.settle();
    assert.ok(b!.got('drain'));
    assert.match(h.notes.at(-1)!, /^STATUS=1\/1 workers serving \(generation 1\); 1 draining;/);
    assert.deepEqual(h.master.metrics.ready(), { ok: true, body: { ready: '1/1', stopping: false } });
  });

  test('HUP warns once per restart-only setting that changed, naming it; reloadable ones are applied quietly', async () => {
    const h = await serving({ workers: '1' });
    h.nextReload = () => resolution({ workers: '1', backlog: '128', metricsBind: '127.0.0.1:9999', timeout: '7', bind: ['127.0.0.1:1'] });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const warned = h.lines.filter((l) => /needs a restart/.test(l));
    assert.deepEqual(warned.map((l) => l.split(' ')[0]).sort(), ['backlog', 'bind', 'metrics-bind']);
    assert.ok(warned.every((l) => /changed in the configuration, but it needs a restart/.test(l)));
  });

  test('a worker crashing while serving is replaced at once, then with back-off when it keeps crashing', async () => {
    const h = await serving({ workers: '1', timeout: '0' });
    await h.rt.advance(20_000); // served long enough to count as healthy
    h.rt.alive(1)[0]!.die(1, null);
    await h.rt.settle();
    const second = h.rt.children.at(-1)!;
    assert.equal(h.rt.children.length, 2, 'replaced at once');
    second.ready();
    await h.rt.settle();
    second.die(1, null); // crashed again right away
    await h.rt.settle();
    assert.equal(h.rt.children.length, 2, 'backing off');
    await h.rt.advance(500);
    assert.equal(h.rt.children.length, 3);
    assert.ok(h.lines.some((l) => /exited with code 1 while serving; replacing it/.test(l)));
  });

  test('TTIN adds a worker in a new slot; TTOU drains the highest slot', async () => {
    const h = await serving({ workers: '2' });
    h.rt.signal('SIGTTIN');
    await h.rt.settle();
    const third = h.rt.children.at(-1)!;
    assert.equal(third.slot, 3);
    third.ready();
    h.rt.signal('SIGTTOU');
    await h.rt.settle();
    assert.ok(third.got('drain'));
    assert.equal(h.rt.alive().length, 2);
  });

  test('QUIT: every worker is asked to drain, STOPPING=1, and the master ends once all exited', async () => {
    const h = await serving({ gracefulTimeout: '10', timeout: '0' });
    for (const c of h.rt.alive()) c.exitOnStop = false;
    h.rt.signal('SIGQUIT');
    await h.rt.settle();
    assert.ok(h.notes.includes('STOPPING'));
    assert.ok(h.rt.alive().every((c) => c.got('drain')));
    const [a, b] = h.rt.alive();
    a!.die(0, null);
    await h.rt.advance(9000);
    assert.equal(await Promise.race([h.result.then(() => 'done'), Promise.resolve('waiting')]), 'waiting');
    await h.rt.advance(1001);
    assert.ok(b!.signals.includes('SIGKILL'), 'killed at graceful-timeout');
    assert.ok(h.lines.some((l) => /still running 10\.0 s after it was told to stop \(shutdown \(SIGQUIT\)\); killing it/.test(l)));
    assert.equal(await h.result, undefined, 'a clean stop');
  });

  test('the kill line after a fast shutdown reports the 2 s it allowed', async () => {
    const h = await serving({ timeout: '0' });
    for (const c of h.rt.alive()) c.exitOnStop = false;
    h.rt.signal('SIGINT');
    await h.rt.advance(2001);
    assert.ok(h.lines.some((l) => /still running 2\.0 s after it was told to stop \(fast shutdown\)/.test(l)), h.lines.join('\n'));
    assert.equal(await h.result, undefined);
  });

  test('an old generation draining uses its own graceful-timeout', async () => {
    const h = await serving({ gracefulTimeout: '3', timeout: '0' });
    for (const c of h.rt.alive(1)) c.exitOnStop = false;
    h.nextReload = () => resolution({ gracefulTimeout: '60', timeout: '0' });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    for (const c of h.rt.alive(2)) c.ready();
    await h.rt.advance(3001);
    assert.ok(h.rt.children.filter((c) => c.gen === 1).every((c) => c.signals.includes('SIGKILL')));
  });
});

describe('exit cause: the log line and the metric label both come from the cause the master recorded', () => {
  const handle = async (state: 'booting' | 'ready' = 'ready') => {
    const rt = new FakeRuntime();
    const w = new WorkerHandle(rt.spawn({} as never), new Generation(1, await resolution()), 1, 0);
    (w.child as FakeChild).exitOnStop = false;
    if (state === 'ready') w.ready(1);
    return w;
  };
  const end = (w: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => {
    w.exited(code, signal);
    w.reap();
    return exitOutcome(w);
  };

  test('drained at a stop, TTOU, a reload, a failed reload: stopped cleanly, each its label', async () => {
    const cases: Array<[StopCause, string, string]> = [
      [{ kind: 'shutdown', sig: 'SIGTERM' }, 'stopped (shutdown (SIGTERM))', 'shutdown'],
      [{ kind: 'fast-shutdown' }, 'stopped (fast shutdown)', 'shutdown'],
      [{ kind: 'scale-down', by: 'ttou' }, 'stopped (TTOU)', 'scale_down'],
      [{ kind: 'reload', gen: 2 }, 'stopped (replaced by generation 2)', 'reload'],
      [{ kind: 'reload-failed', gen: 3 }, 'stopped (generation 3 failed to boot)', 'reload'],
      [{ kind: 'replaced' }, 'stopped (replaced (superseded))', 'reload'],
    ];
    for (const [cause, line, label] of cases) {
      const w = await handle();
      w.drain(10, cause);
      assert.deepEqual(end(w, 0, null), { reason: label, message: `${w.name} ${line}`, level: 'info' }, cause.kind);
    }
  });

  test('replaced after retiring: the label says why it retired, whatever the words', async () => {
    const cases: Array<[RetireCause, string, string]> = [
      [{ kind: 'asked', reason: 'max-requests' }, 'replaced (max-requests)', 'max_requests'],
      [{ kind: 'asked', reason: 'uncaught exception' }, 'replaced (uncaught exception)', 'crash'],
      [{ kind: 'memory', rss: 600 * 1048576, max: 512 * 1048576 }, 'replaced (memory: RSS 600 MiB above max-memory 512 MiB)', 'memory'],
    ];
    for (const [cause, why, label] of cases) {
      const w = await handle();
      assert.ok(w.retire(cause));
      assert.equal(w.state, 'retiring');
      w.drain(10, { kind: 'replaced' });
      assert.deepEqual(end(w, 0, null), { reason: label, message: `${w.name} stopped (${why})`, level: 'info' });
    }
    // A retiring worker drained by a stop counts as a shutdown, as it always did.
    const w = await handle();
    w.retire({ kind: 'asked', reason: 'max-requests' });
    w.drain(10, { kind: 'shutdown', sig: 'SIGQUIT' });
    assert.equal(end(w, 0, null).reason, 'shutdown');
  });

  test('killed by corral: a missed heartbeat or the boot timeout is a timeout; a drain overrun keeps its cause', async () => {
    const silent = await handle();
    silent.kill({ kind: 'heartbeat-missed' });
    assert.deepEqual(end(silent, null, 'SIGKILL'), { reason: 'timeout', message: `${silent.name} was killed by corral (timeout)`, level: 'error' });
    const slow = await handle('booting');
    slow.kill({ kind: 'boot-timeout', seconds: 5 });
    assert.equal(slow.bootFailure?.message, 'not ready within boot-timeout (5 s)');
    assert.deepEqual(end(slow, null, 'SIGKILL'), { reason: 'timeout', message: `${slow.name} failed to boot: killed by corral (not ready within boot-timeout (5 s))`, level: 'error' });
    const stuck = await handle();
    stuck.drain(0, { kind: 'scale-down', by: 'ttou' });
    stuck.kill();
    assert.deepEqual(end(stuck, null, 'SIGKILL'), { reason: 'scale_down', message: `${stuck.name} was killed by corral (TTOU)`, level: 'warn' });
  });

  test('asking to be replaced while booting is a failed boot, labelled a crash (not the timeout a boot kill used to mean)', async () => {
    const w = await handle('booting');
    w.kill({ kind: 'boot-crash', reason: 'uncaught exception' });
    w.ready(5);
    assert.equal(w.state, 'booting', 'a worker killed while booting never turns ready');
    assert.deepEqual(end(w, null, 'SIGKILL'), {
      reason: 'crash', message: `${w.name} failed to boot: killed by corral (asked to be replaced before it was ready (uncaught exception))`, level: 'error',
    });
  });

  test('nothing decided: the exit status explains it, with a hint where the cause is likely outside corral', async () => {
    const oom = await handle();
    assert.deepEqual(end(oom, null, 'SIGKILL'), {
      reason: 'crash', level: 'error',
      message: `${oom.name} was killed by SIGKILL while serving (perhaps out of memory: see \`journalctl -k\` for the OOM killer, or MemoryMax= in the unit); replacing it`,
    });
    assert.match(end(await handle(), null, 'SIGSEGV').message, /native addon/);
    assert.match(end(await handle(), null, 'SIGABRT').message, /heap limit/);
    const boot = await handle('booting');
    boot.bootFailed({ kind: 'init', message: 'app init failed: db down' });
    assert.deepEqual(end(boot, 3, null), { reason: 'crash', message: `${boot.name} failed to boot: exited with code 3: app init failed: db down`, level: 'error' });
  });

  test('a worker that was never ready and exits on its own failed to boot, even after it was told to stop', async () => {
    const cases: Array<[StopCause | undefined, string]> = [
      [undefined, 'no decision'],
      [{ kind: 'fast-shutdown' }, 'the rest of a failed start is stopped'],
      [{ kind: 'reload-failed', gen: 2 }, 'the rest of a failed reload is drained'],
      [{ kind: 'shutdown', sig: 'SIGQUIT' }, 'a stop while it boots'],
    ];
    for (const [cause, what] of cases) {
      const w = await handle('booting');
      if (cause?.kind === 'fast-shutdown') w.stopFast(10, cause);
      else if (cause) w.drain(10, cause);
      w.bootFailed({ kind: 'load', message: 'app module /x.mjs: default export is a number (42)', code: 'E_APP_SHAPE' });
      assert.deepEqual(end(w, 4, null), {
        reason: 'crash', level: 'error',
        message: `${w.name} failed to boot: exited with code 4 (app could not be loaded): app module /x.mjs: default export is a number (42)`,
      }, what);
    }
    // The worker's own message lost: the exit code says it all, and the line does not repeat itself.
    const lost = await handle('booting');
    assert.deepEqual(end(lost, 4, null), { reason: 'crash', message: `${lost.name} failed to boot: exited with code 4 (app could not be loaded)`, level: 'error' });
    const lostDraining = await handle('booting');
    lostDraining.drain(10, { kind: 'reload-failed', gen: 2 });
    assert.equal(end(lostDraining, 4, null).message, `${lostDraining.name} failed to boot: exited with code 4 (app could not be loaded)`);
    const died = await handle('booting');
    assert.match(end(died, null, 'SIGKILL').message, /failed to boot: killed by SIGKILL \(perhaps out of memory/);
  });

  test('never ready but stopped as told, or killed by corral for a stop: not a failed boot', async () => {
    const told = await handle('booting');
    told.stopFast(10, { kind: 'fast-shutdown' });
    assert.deepEqual(end(told, 0, null), { reason: 'shutdown', message: `${told.name} stopped (fast shutdown)`, level: 'info' });
    const stuck = await handle('booting');
    stuck.stopFast(10, { kind: 'fast-shutdown' });
    stuck.kill();
    assert.deepEqual(end(stuck, null, 'SIGKILL'), { reason: 'shutdown', message: `${stuck.name} was killed by corral (fast shutdown)`, level: 'warn' });
  });

  test('a ready worker that exits non-zero while draining: said so, not "while serving; replacing it"', async () => {
    const w = await handle();
    w.drain(10, { kind: 'shutdown', sig: 'SIGTERM' });
    assert.deepEqual(end(w, 1, null), { reason: 'shutdown', message: `${w.name} exited with code 1 while draining (shutdown (SIGTERM))`, level: 'warn' });
  });

  test('a lost boot-failed message: exit code 4 alone says the app failed to load', async () => {
    const w = await handle('booting');
    end(w, 4, null);
    assert.equal(w.bootFailure?.kind, 'load');
  });
});

describe('Balancer', () => {
  const workers = async (kept: Array<number | null>) => {
    const g = new Generation(1, await resolution());
    const rt = new FakeRuntime();
    return kept.map((k, i) => {
      const w = new WorkerHandle(rt.spawn({} as never), g, i + 1, 0);
      if (k !== null) w.connsReported(k);
      return w;
    });
  };
  const verdicts = (ws: WorkerHandle[]) => ws.map((w) => (w.child as FakeChild).sent.filter((m) => m.t === 'balance').at(-1));

  test('a worker above its fair share plus slack is told to shed; the others are not', async () => {
    const ws = await workers([30, 2]);
    const b = new Balancer();
    b.noteReport();
    b.run(ws, 100);
    assert.deepEqual(verdicts(ws), [{ t: 'balance', limit: 18 }, { t: 'balance', limit: null }]);
  });

  test('small differences are left alone, and nothing runs before every worker reported', async () => {
    const b = new Balancer();
    const even = await workers([10, 8]);
    b.noteReport();
    b.run(even, 100);
    assert.ok(verdicts(even).every((v) => v?.t === 'balance' && v.limit === null));
    const unknown = await workers([10, null]);
    b.noteReport();
    b.run(unknown, 200);
    assert.deepEqual(verdicts(unknown), [undefined, undefined]);
  });

  test('it recomputes at most every 50 ms, and only when something changed', async () => {
    const b = new Balancer();
    const ws = await workers([5, 5]);
    assert.equal(b.nextAt(), Infinity);
    b.noteReport();
    b.run(ws, 100);
    b.noteReport();
    b.run(ws, 120);
    assert.equal(verdicts(ws).length, 2);
    assert.equal((ws[0]!.child as FakeChild).sent.length, 1, 'not again within 50 ms');
    assert.equal(b.nextAt(), 150);
  });
});

describe('shutdown delay', { timeout: 20_000 }, () => {
  const stopped = (h: Harness) => h.rt.children.filter((c) => c.got('drain') || c.got('stop'));
  const done = (h: Harness) => Promise.race([h.result.then(() => 'done'), new Promise((r) => setImmediate(() => r('running')))]);

  test('TERM: not ready at once (STOPPING=1, STATUS says so) while every worker keeps serving until the delay is over; then the drain', async () => {
    const h = await serving({ shutdownDelay: '2', gracefulTimeout: '10', timeout: '0' });
    const workers = h.rt.alive(1);
    assert.equal(h.master.metrics.ready().ok, true, 'ready before the signal');
    h.rt.signal('SIGTERM');
    await h.rt.settle();
    assert.ok(h.notes.includes('STOPPING'), 'STOPPING=1 at once');
    assert.equal(h.master.stopping()?.drainInMs, 2000);
    assert.ok(h.lines.some((l) => /SIGTERM: shutdown delay: 2 s before draining/.test(l)), h.lines.join('\n'));
    assert.match(h.notes.filter((n) => n.startsWith('STATUS=')).at(-1)!, /stopping: shutdown delay, not ready, draining in 2 s/);
    assert.deepEqual(h.master.metrics.ready(), { ok: false, body: { ready: '2/2', stopping: true, shutdownDelay: { drainInS: 2 } } }, '/readyz answers 503 with the reason');
    await h.rt.advance(1999);
    assert.deepEqual(stopped(h), [], 'no worker is told to drain during the delay');
    assert.ok(workers.every((c) => !c.exited));
    assert.equal(await done(h), 'running');
    await h.rt.advance(1);
    assert.ok(workers.every((c) => c.got('drain')), 'the drain starts when the delay is over');
    assert.ok(h.lines.some((l) => /SIGTERM: shutdown delay over: graceful shutdown; draining 2 worker\(s\)/.test(l)), h.lines.join('\n'));
    assert.equal(await h.result, undefined, 'a clean stop');
  });

  test('a second TERM or QUIT during the delay drains at once; another one stops fast', async () => {
    const h = await serving({ shutdownDelay: '30', gracefulTimeout: '10', timeout: '0' });
    for (const c of h.rt.alive()) c.exitOnStop = false;
    h.rt.signal('SIGTERM');
    await h.rt.advance(500);
    assert.deepEqual(stopped(h), []);
    h.rt.signal('SIGQUIT');
    await h.rt.settle();
    assert.ok(h.rt.alive().every((c) => c.got('drain') && !c.got('stop')), 'drained, not stopped fast');
    assert.ok(h.lines.some((l) => /SIGQUIT during the shutdown delay: graceful shutdown/.test(l)), h.lines.join('\n'));
    assert.equal(h.master.stopping()?.drainInMs, undefined, 'the delay is over');
    h.rt.signal('SIGTERM');
    await h.rt.settle();
    assert.ok(h.rt.alive().every((c) => c.got('stop')), 'the next signal escalates to a fast stop');
    assert.ok(h.lines.some((l) => /SIGTERM during drain: fast shutdown/.test(l)));
    await h.rt.advance(2001);
    assert.equal(await h.result, undefined);
  });

  test('INT during the delay is a fast stop; the delay does not drain afterwards', async () => {
    const h = await serving({ shutdownDelay: '5', timeout: '0' });
    h.rt.signal('SIGTERM');
    await h.rt.advance(100);
    h.rt.signal('SIGINT');
    await h.rt.settle();
    assert.ok(h.lines.some((l) => /SIGINT during the shutdown delay: fast shutdown/.test(l)), h.lines.join('\n'));
    assert.ok(h.rt.children.every((c) => c.got('stop') && !c.got('drain')));
    assert.equal(await h.result, undefined);
  });

  test('the delay applies only once something served: TERM during the start drains at once', async () => {
    const h = await startMaster({ shutdownDelay: '5', timeout: '0' });
    h.rt.signal('SIGTERM');
    await h.rt.settle();
    assert.ok(h.rt.children.every((c) => c.got('drain')));
    assert.ok(!h.lines.some((l) => /shutdown delay/.test(l)));
  });

  test('a generation booting for a reload is dropped at once; the serving one waits for the delay', async () => {
    const h = await serving({ shutdownDelay: '3', timeout: '0' });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const fresh = h.rt.alive(2);
    assert.equal(fresh.length, 2);
    h.rt.signal('SIGTERM');
    await h.rt.settle();
    assert.ok(fresh.every((c) => c.got('drain')), 'the pending generation goes');
    assert.ok(h.rt.children.filter((c) => c.gen === 1).every((c) => !c.got('drain')), 'generation 1 still serves');
    await h.rt.advance(3000);
    assert.ok(h.rt.children.filter((c) => c.gen === 1).every((c) => c.got('drain')));
    assert.equal(await h.result, undefined);
  });

  test('start-up warns when shutdown-delay + graceful-timeout do not fit the stop budget, and is quiet when they do', async () => {
    const tight = await startMaster({ shutdownDelay: '5', gracefulTimeout: '30', stopBudget: '30' });
    const warning = tight.lines.find((l) => /do not fit the stop budget/.test(l));
    assert.ok(warning, tight.lines.join('\n'));
    assert.match(warning, /shutdown-delay \(5 s\) \+ graceful-timeout \(30 s\) \+ 2 s to exit do not fit the stop budget \(30 s, from command line/);
    assert.match(warning, /at least 37 s/);
    const roomy = await startMaster({ shutdownDelay: '5', gracefulTimeout: '30', stopBudget: '45' });
    assert.ok(!roomy.lines.some((l) => /stop budget/.test(l)));
    const unknown = await startMaster({ shutdownDelay: '60' });
    assert.ok(!unknown.lines.some((l) => /stop budget/.test(l)), 'no budget set: nothing to check');
  });

  test('a reload to settings that do not fit the stop budget warns too', async () => {
    const h = await serving({ stopBudget: '45' });
    assert.ok(!h.lines.some((l) => /stop budget/.test(l)));
    h.nextReload = () => resolution({ stopBudget: '45', shutdownDelay: '20' });
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    assert.ok(h.lines.some((l) => /shutdown-delay \(20 s\) \+ graceful-timeout \(30 s\)/.test(l)), h.lines.join('\n'));
  });
});
