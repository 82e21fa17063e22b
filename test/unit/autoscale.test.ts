import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, initialState, memoryRoom, type Decision, type Observation, type Rules, type ScalingState } from '../../src/master/autoscale.js';
import { workerRange } from '../../src/config/worker-range.js';
import { RuleError } from '../../src/config/validators.js';

const MiB = 1048576;
const RULES: Rules = { upWindowMs: 2000, idleMs: 30_000, busy: 0.8 };

/** Two serving workers of 1..4, quiet, no memory limit. */
function obs(over: Partial<Observation> = {}): Observation {
  const target = over.target ?? 2;
  return {
    now: 0, target, min: 1, max: 4, serving: target, booting: 0, queued: 0,
    utilization: Array(target).fill(0.1), delays: Array(target).fill(0.001),
    workersRss: target * 60 * MiB, largestRss: 60 * MiB, masterRss: 50 * MiB, memoryLimit: undefined,
    ...over,
  };
}

/** Feeds observations every `stepMs` from `from` to `to` (inclusive); returns the decisions made and the state. */
function run(s: ScalingState, from: number, to: number, stepMs: number, o: (now: number) => Observation): { state: ScalingState; decisions: Array<Decision & { at: number }> } {
  const decisions: Array<Decision & { at: number }> = [];
  for (let t = from; t <= to; t += stepMs) {
    const r = decide(s, o(t), RULES);
    s = r.state;
    if (r.decision) decisions.push({ ...r.decision, at: t });
  }
  return { state: s, decisions };
}

const busy = (target = 2, u = 0.95) => (now: number) => obs({ now, target, utilization: Array(target).fill(u) });

describe('autoscale rules (pure)', () => {
  test('sustained busy event loops add a worker once the window is over, not before', () => {
    const { decisions } = run(initialState(), 0, 1500, 500, busy());
    assert.deepEqual(decisions, [], 'within the window: nothing');
    const r = run(initialState(), 0, 2000, 500, busy());
    assert.equal(r.decisions.length, 1);
    assert.deepEqual({ kind: r.decisions[0]!.kind, to: (r.decisions[0] as { to: number }).to, reason: r.decisions[0]!.reason, at: r.decisions[0]!.at }, { kind: 'up', to: 3, reason: 'busy', at: 2000 });
    assert.match(r.decisions[0]!.detail, /event loops 95 % busy \(bound 80 %\) for 2\.0 s/);
  });

  test('a blip does not: one quiet observation starts the window again', () => {
    const o = (now: number) => (now === 1500 || now === 3500 ? obs({ now }) : busy()(now));
    assert.deepEqual(run(initialState(), 0, 5000, 500, o).decisions, []);
  });

  test('a non-empty accept queue through the window adds a worker (reason queue)', () => {
    const r = run(initialState(), 0, 2000, 500, (now) => obs({ now, queued: 12 }));
    assert.equal(r.decisions[0]?.reason, 'queue');
    assert.match(r.decisions[0]!.detail, /12 connection\(s\) waiting in the accept queue/);
  });

  test('a high event-loop delay counts only when the loops are at least half as busy as the bound', () => {
    const slowQuiet = (now: number) => obs({ now, delays: [0.3, 0.3], utilization: [0.2, 0.2] });
    assert.deepEqual(run(initialState(), 0, 5000, 500, slowQuiet).decisions, [], 'one slow request at a quiet time: nothing');
    const slowBusy = (now: number) => obs({ now, delays: [0.3, 0.3], utilization: [0.5, 0.5] });
    assert.equal(run(initialState(), 0, 2000, 500, slowBusy).decisions[0]?.reason, 'delay');
  });

  test('no step up while a worker of the generation boots; the window starts again after it', () => {
    let s = run(initialState(), 0, 2000, 500, busy()).state;
    const booting = (now: number) => obs({ now, target: 3, serving: 2, booting: 1, utilization: [1, 1] });
    const r1 = run(s, 2500, 6000, 500, booting);
    assert.deepEqual(r1.decisions, []);
    s = r1.state;
    const r2 = run(s, 6500, 8500, 500, busy(3));
    assert.deepEqual(r2.decisions.map((d) => [d.kind, (d as { to: number }).to, d.at]), [['up', 4, 8500]]);
  });

  test('steps double while the pressure lasts (1, 2, 4), capped at max', () => {
    const wide = (target: number) => (now: number) => obs({ now, target, max: 8, utilization: Array(target).fill(1) });
    let r = run(initialState(), 0, 2000, 500, wide(1));
    assert.equal((r.decisions[0] as { to: number }).to, 2);
    r = run(r.state, 2500, 4500, 500, wide(2));
    assert.equal((r.decisions[0] as { to: number }).to, 4);
    r = run(r.state, 5000, 7000, 500, wide(4));
    assert.equal((r.decisions[0] as { to: number }).to, 8);
    const calm = run(r.state, 7500, 7500, 500, (now) => obs({ now, target: 8, max: 8 }));
    assert.equal(calm.state.lastStep, 0, 'a quiet observation ends the episode: the next step is 1 again');
  });

  test('at max: held, said once per episode, then again in the next one', () => {
    const atMax = (now: number) => obs({ now, target: 4, utilization: [1, 1, 1, 1] });
    const r = run(initialState(), 0, 10_000, 500, atMax);
    assert.deepEqual(r.decisions.map((d) => [d.kind, d.reason]), [['hold', 'max']]);
    const again = run(run(r.state, 10_500, 10_500, 500, (now) => obs({ now, target: 4 })).state, 11_000, 13_000, 500, atMax);
    assert.deepEqual(again.decisions.map((d) => d.reason), ['max']);
  });

  test('never up past the cgroup memory limit at the measured RSS per worker', () => {
    // 400 MiB limit, 10 % headroom: 360 - 50 (master) - 2 x 100 (workers) = 110 MiB: room for one of 100 MiB.
    const tight = { memoryLimit: 400 * MiB, workersRss: 200 * MiB, largestRss: 100 * MiB };
    assert.equal(memoryRoom(obs(tight)), 1);
    const wide = (target: number, extra: Partial<Observation>) => (now: number) => obs({ now, target, max: 8, utilization: Array(target).fill(1), ...extra });
    let r = run(initialState(), 0, 2000, 500, wide(2, tight));
    assert.equal((r.decisions[0] as { to: number }).to, 3);
    r = run(r.state, 2500, 6000, 500, wide(3, { ...tight, workersRss: 300 * MiB }));
    assert.deepEqual(r.decisions.map((d) => [d.kind, d.reason]), [['hold', 'memory']]);
    assert.match(r.decisions[0]!.detail, /the memory limit \(400 MiB\) holds no more workers at 100 MiB each/);
  });

  test('a doubled step is cut to what the memory limit holds', () => {
    const o = (target: number, workersRss: number) => (now: number) => obs({ now, target, max: 8, utilization: Array(target).fill(1), memoryLimit: 1000 * MiB, workersRss, largestRss: 100 * MiB });
    let r = run(initialState(), 0, 2000, 500, o(2, 200 * MiB));
    r = run(r.state, 2500, 4500, 500, o(3, 300 * MiB));
    // 900 - 50 - 300 = 550: room for 5; the step would be 2: 2.
    assert.equal((r.decisions[0] as { to: number }).to, 5);
    r = run(r.state, 5000, 7000, 500, o(5, 700 * MiB));
    // 900 - 50 - 700 = 150: room for 1, the step would be 3 (to max): 1.
    assert.equal((r.decisions[0] as { to: number }).to, 6);
    assert.match(r.decisions[0]!.detail, /as many as the memory limit holds/);
  });

  test('down one after the idle timeout, then the clock starts again; never below min', () => {
    const quiet = (target: number) => (now: number) => obs({ now, target, utilization: Array(target).fill(0.05) });
    const early = run(initialState(), 0, 29_500, 500, quiet(3));
    assert.deepEqual(early.decisions, [], 'before the idle timeout: nothing');
    const r = run(initialState(), 0, 30_000, 500, quiet(3));
    assert.deepEqual(r.decisions.map((d) => [d.kind, (d as { to: number }).to, d.reason, d.at]), [['down', 2, 'idle', 30_000]]);
    const next = run(r.state, 30_500, 60_000, 500, quiet(2));
    assert.deepEqual(next.decisions.map((d) => [(d as { to: number }).to, d.at]), [[1, 60_000]]);
    assert.deepEqual(run(next.state, 60_500, 200_000, 500, quiet(1)).decisions, [], 'at min: stays');
  });

  test('not down while one worker fewer would be above half the bound, or anything waits', () => {
    // 2 workers at 0.5 each: 1.0 in all, more than 0.4 x 1.
    assert.deepEqual(run(initialState(), 0, 60_000, 500, (now) => obs({ now, utilization: [0.5, 0.5] })).decisions, []);
    // Idle loops but connections waiting now and then (every 10 s): the idle clock restarts.
    const o = (now: number) => obs({ now, utilization: [0.05, 0.05], queued: now % 10_000 === 0 ? 1 : 0 });
    assert.deepEqual(run(initialState(), 0, 60_000, 500, o).decisions.filter((d) => d.kind === 'down'), []);
  });

  test('pressure resets the idle clock', () => {
    let s = run(initialState(), 0, 20_000, 500, (now) => obs({ now, target: 3, utilization: [0, 0, 0] })).state;
    s = run(s, 20_500, 21_000, 500, (now) => obs({ now, target: 3, utilization: [1, 1, 1] })).state;
    const r = run(s, 21_500, 45_000, 500, (now) => obs({ now, target: 3, utilization: [0, 0, 0] }));
    assert.deepEqual(r.decisions, [], '30 s are counted again from the end of the pressure');
  });
});

describe('the workers setting: a number or a range', () => {
  const t = workerRange();
  test('a number, a string, a range, an object', () => {
    assert.deepEqual(t.parse(4), { min: 4, max: 4 });
    assert.deepEqual(t.parse('4'), { min: 4, max: 4 });
    assert.deepEqual(t.parse('2..8'), { min: 2, max: 8 });
    assert.deepEqual(t.parse(' 2 .. 8 '), { min: 2, max: 8 });
    assert.deepEqual(t.parse('3..3'), { min: 3, max: 3 });
    assert.deepEqual(t.parse({ min: 1, max: 3 }), { min: 1, max: 3 });
    assert.equal(t.show({ min: 2, max: 8 }), '2..8');
    assert.equal(t.show({ min: 4, max: 4 }), '4');
  });

  test('each bad value says the rule', () => {
    const bad: Array<[unknown, RegExp]> = [
      ['8..2', /^"8\.\.2" is not valid: the minimum \(8\) is above the maximum \(2\); write MIN\.\.MAX$/],
      ['0', /^"0" is not valid: the number of workers must be from 1 to 1024$/],
      ['0..4', /^"0\.\.4" is not valid: the minimum must be from 1 to 1024$/],
      ['2..2000', /the maximum must be from 1 to 1024$/],
      ['2-8', /^"2-8" is not valid: must be a whole number from 1 to 1024, or a range MIN\.\.MAX such as 2\.\.8$/],
      ['2...8', /or a range MIN\.\.MAX/],
      ['..8', /or a range MIN\.\.MAX/],
      ['four', /or a range MIN\.\.MAX/],
      [2.5, /or a range MIN\.\.MAX/],
      [{ min: 2 }, /a range object has exactly two fields, min and max/],
      [{ min: 2, max: 8, step: 1 }, /exactly two fields/],
      [{ min: 5, max: 2 }, /the minimum \(5\) is above the maximum \(2\)/],
      [[2, 8], /or a range MIN\.\.MAX/],
    ];
    for (const [raw, re] of bad) assert.throws(() => t.parse(raw), (err: Error) => err instanceof RuleError && re.test(err.message), JSON.stringify(raw));
  });
});
