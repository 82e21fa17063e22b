import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScalingProbe } from '../../src/master/scaler.js';
import { startMaster, type FakeChild, type Harness } from '../helpers/fake-runtime.js';

const MiB = 1048576;

/** A probe the test sets: the accept queue, the cgroup limit and the master's RSS. */
class Probe implements ScalingProbe {
  queue: number | undefined = 0;
  limit: number | undefined = undefined;
  rss = 50 * MiB;
  queued() { return this.queue; }
  memoryLimit() { return this.limit; }
  masterRss() { return this.rss; }
}

interface Scaled extends Harness {
  probe: Probe;
}

/** A master with `workers` (a range), short windows, its first generation ready. */
async function scaled(workers: string, extra: Record<string, unknown> = {}, probe = new Probe()): Promise<Scaled> {
  const h = await startMaster({ workers, scaleUpWindow: '2', scaleIdleTimeout: '10', ...extra }, {}, { scalingProbe: probe });
  for (const c of h.rt.alive(1)) c.ready();
  await h.rt.settle();
  return Object.assign(h, { probe });
}

/** Live workers not told to drain or stop. */
const serving = (h: Harness): FakeChild[] => h.rt.alive().filter((c) => !c.got('drain') && !c.got('stop'));

/** Every serving worker reports this event-loop utilization (and RSS). */
function beat(h: Harness, elu: number, rss = 60 * MiB): void {
  for (const c of serving(h)) c.say({ t: 'hb', rss, inflight: 0, m: { requests: 0, eld: 0.001, elu } });
}

/** `ms` of load at `elu`, a heartbeat every 500 ms; new workers get ready at once. */
async function load(h: Harness, ms: number, elu: number, rss = 60 * MiB): Promise<void> {
  for (let t = 0; t < ms; t += 500) {
    for (const c of serving(h)) if (!readyOnes.has(c)) { readyOnes.add(c); c.ready(); }
    beat(h, elu, rss);
    await h.rt.advance(500);
  }
}
const readyOnes = new WeakSet<FakeChild>();

const reasonOf = (c: FakeChild) => c.sent.find((m) => m.t === 'drain')?.t === 'drain' ? (c.sent.find((m) => m.t === 'drain') as { reason: string }).reason : undefined;
const decisions = (h: Harness, direction: string, reason: string) => Number(new RegExp(`corral_scaling_decisions_total\\{direction="${direction}",reason="${reason}"\\} (\\d+)`).exec(h.master.metrics.text())?.[1]);

describe('a range of workers on the fake runtime', { timeout: 20_000 }, () => {
  test('starts at the minimum; sustained load adds a worker, logged and counted', async () => {
    const h = await scaled('1..3');
    assert.equal(serving(h).length, 1);
    assert.match(h.master.metrics.text(), /\ncorral_workers_min 1\n[^]*\ncorral_workers_max 3\n/);
    await load(h, 1500, 0.95);
    assert.equal(h.rt.children.length, 1, 'within the window: no new worker');
    await load(h, 1000, 0.95);
    assert.equal(h.rt.children.length, 2, 'after the window: one more');
    assert.deepEqual(h.rt.children.map((c) => c.slot), [1, 2]);
    assert.ok(h.lines.some((l) => /^scale up: workers 1 -> 2 of 1\.\.3 \(busy: event loops 95 % busy \(bound 80 %\) for 2\.0 s\)$/.test(l)), h.lines.join('\n'));
    assert.equal(decisions(h, 'up', 'busy'), 1);
    assert.match(h.master.metrics.text(), /corral_workers_desired 2\n/);
  });

  test('a blip adds nothing', async () => {
    const h = await scaled('1..3');
    for (let i = 0; i < 4; i++) {
      await load(h, 1500, 0.95);
      await load(h, 500, 0.1);
    }
    assert.equal(h.rt.children.length, 1);
    assert.equal(decisions(h, 'up', 'busy'), 0);
  });

  test('connections waiting in the accept queue add a worker (reason queue)', async () => {
    const h = await scaled('1..3');
    h.probe.queue = 40;
    await load(h, 2500, 0.3);
    assert.equal(h.rt.children.length, 2);
    assert.equal(decisions(h, 'up', 'queue'), 1);
  });

  test('up to max, then held (said once); idle brings it back down, one at a time, by scale-down drains', async () => {
    const h = await scaled('1..3');
    await load(h, 10_000, 1);
    assert.equal(serving(h).length, 3);
    assert.equal(decisions(h, 'held', 'max'), 1, 'held at the maximum, counted once');
    assert.equal(h.lines.filter((l) => l.startsWith('scale up held at 3 worker(s) (max)')).length, 1);
    await load(h, 9500, 0.05);
    assert.equal(serving(h).length, 3, 'not before the idle timeout');
    await load(h, 1000, 0.05);
    assert.equal(serving(h).length, 2);
    const gone = h.rt.children.find((c) => c.slot === 3)!;
    assert.equal(reasonOf(gone), 'scale-down', 'the app hears scale-down');
    assert.ok(h.lines.some((l) => /^scale down: workers 3 -> 2 of 1\.\.3 \(idle: for 10\.0 s the load fitted in 2 worker\(s\)/.test(l)));
    assert.ok(h.lines.some((l) => /gen 1 #3\) stopped \(scale-down: idle\)$/.test(l)), 'its exit line says why');
    assert.match(h.master.metrics.text(), /corral_worker_exits_total\{reason="scale_down"\} 1\n/);
    await load(h, 10_500, 0.05);
    assert.equal(serving(h).length, 1);
    await load(h, 60_000, 0);
    assert.equal(serving(h).length, 1, 'never below the minimum');
    assert.equal(decisions(h, 'down', 'idle'), 2);
  });

  test('never past the cgroup memory limit at the measured RSS', async () => {
    const probe = new Probe();
    // 90 % of 400 MiB = 360; master 50, two workers of 100: room for one more, not two.
    probe.limit = 400 * MiB;
    const h = await scaled('2..6', {}, probe);
    await load(h, 10_000, 1, 100 * MiB);
    assert.equal(serving(h).length, 3);
    assert.equal(decisions(h, 'held', 'memory'), 1);
    assert.ok(h.lines.some((l) => /^scale up held at 3 worker\(s\) \(memory\): .*the memory limit \(400 MiB\) holds no more workers at 100 MiB each$/.test(l)));
  });

  test('TTIN/TTOU shift the range and the count by one; the load then works within the new range', async () => {
    const h = await scaled('1..3');
    h.rt.signal('SIGTTIN');
    await h.rt.settle();
    assert.equal(h.rt.alive().length, 2);
    assert.ok(h.lines.includes('TTIN: workers 1 -> 2; range 1..3 -> 2..4 until the next reload'), h.lines.join('\n'));
    assert.match(h.master.metrics.text(), /\ncorral_workers_min 2\n[^]*\ncorral_workers_max 4\n/);
    await load(h, 60_000, 0);
    assert.equal(serving(h).length, 2, 'idle does not undo a TTIN: the minimum moved with it');
    h.rt.signal('SIGTTOU');
    h.rt.signal('SIGTTOU');
    await h.rt.settle();
    assert.equal(serving(h).length, 1);
    assert.ok(h.lines.includes('TTOU: workers 2 -> 1; range 2..4 -> 1..3 until the next reload'), h.lines.join('\n'));
    assert.ok(h.lines.includes('TTOU ignored: already at 1 worker'));
    assert.equal(decisions(h, 'up', 'ttin'), 1);
    assert.equal(decisions(h, 'down', 'ttou'), 1);
    assert.equal(reasonOf(h.rt.children.find((c) => c.slot === 2)!), 'scale-down');
  });

  test('a fixed count keeps today\'s TTIN/TTOU and never scales on load', async () => {
    const h = await scaled('2');
    await load(h, 10_000, 1);
    assert.equal(h.rt.children.length, 2, 'a fixed count does not follow the load');
    h.rt.signal('SIGTTIN');
    await h.rt.settle();
    assert.equal(h.rt.alive().length, 3);
    assert.ok(h.lines.includes('TTIN: workers 2 -> 3; range 2 -> 3 until the next reload'));
    assert.match(h.master.metrics.status().master.scaling ?? '', /^3 worker\(s\), fixed \(TTIN at \d\d:\d\d:\d\d: 2 -> 3\)$/);
  });

  test('a reload (HUP) starts the new generation with the count serving now, within its range', async () => {
    const h = await scaled('1..3');
    await load(h, 6000, 1);
    assert.equal(serving(h).length, 3);
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    assert.equal(h.rt.alive(2).length, 3, 'generation 2 starts with 3, not the minimum');
    assert.ok(h.lines.includes('reload #1: starting generation 2 (3 workers)'));
  });

  test('while a reload is under way the count holds, and the loop does not spin on the sample it skips', async () => {
    const h = await scaled('1..3');
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const ticks = h.notes.length;
    for (let t = 0; t < 5000; t += 500) {
      for (const c of h.rt.alive(1)) c.say({ t: 'hb', rss: 60 * MiB, inflight: 0, m: { requests: 0, eld: 0.001, elu: 1 } });
      await h.rt.advance(500);
    }
    assert.equal(h.rt.alive(2).length, 1, 'generation 2 still boots');
    assert.ok(h.notes.length - ticks < 60, `${h.notes.length - ticks} loop turns in 5 s`);
    assert.equal(decisions(h, 'up', 'busy'), 0, 'no decision while generation 2 boots');
  });

  test('`corral status` says why the count is what it is', async () => {
    const h = await scaled('1..3');
    assert.match(h.master.metrics.status().master.scaling ?? '', /^1 worker\(s\) in 1\.\.3: at the minimum$/);
    await load(h, 1000, 0.95);
    assert.match(h.master.metrics.status().master.scaling ?? '', /^1 worker\(s\) in 1\.\.3: load above the workers \(busy\) for 0\.5 s of 2 s$/);
    await load(h, 1500, 0.95);
    const st = h.master.metrics.status().master;
    assert.deepEqual([st.workersMin, st.workersMax], [1, 3]);
    assert.match(st.scaling ?? '', /^2 worker\(s\) in 1\.\.3: .*; last change: up at \d\d:\d\d:\d\d: 1 -> 2 \(busy\)$/);
  });
});
