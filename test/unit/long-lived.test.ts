import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { LONG_LIVED_BUCKETS } from '../../src/metrics/definitions.js';
import { LongLived, spread } from '../../src/worker/long-lived.js';
import type { CorralResponse } from '../../src/worker/response.js';
import { cutMarginMs } from '../../src/worker/worker.js';
import { compileAccessFormat } from '../../src/logging/access-format.js';

/** A stand-in for an event-stream response: what LongLived touches of one. */
class FakeStream extends EventEmitter {
  writableEnded = false;
  destroyed = false;
  endedAt: number | undefined;
  readonly req = { socket: null };
  constructor(readonly startedAt: number, private readonly clock: { t: number }) {
    super();
  }
  end(): void {
    this.writableEnded = true;
    this.endedAt = this.clock.t;
    this.emit('close');
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

/** LongLived on a clock and timer the test drives: `run()` fires timers in order until none is left. */
function harness(spreadMs: number, random: () => number = Math.random) {
  const clock = { t: 1000 };
  let pending: { fn: () => void; at: number } | undefined;
  let timersSet = 0;
  const ll = new LongLived({
    settings: { spreadMs, closeReload: 1012, closeStop: 1001 },
    now: () => clock.t,
    random,
    setTimer: (fn, ms) => {
      timersSet++;
      pending = { fn, at: clock.t + ms };
      return pending;
    },
    clearTimer: (t) => {
      if (t === pending) pending = undefined;
    },
  });
  const streams: FakeStream[] = [];
  const open = (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = new FakeStream(performance.now(), clock);
      streams.push(s);
      ll.stream(s as unknown as CorralResponse);
    }
  };
  const run = () => {
    while (pending) {
      const p = pending;
      pending = undefined;
      clock.t = Math.max(clock.t, p.at);
      p.fn();
    }
  };
  return { ll, clock, streams, open, run, timers: () => timersSet };
}

describe('the drain\'s spread', () => {
  test('1000 streams over a 5 s window: every close within the window, spread out, one timer at a time', () => {
    const h = harness(5000);
    h.open(1000);
    h.ll.drain('reload');
    h.run();
    const at = h.streams.map((s) => s.endedAt! - 1000);
    assert.ok(at.every((t) => t >= 0 && t <= 5000), 'all within [0, 5000] ms of the drain');
    assert.ok(Math.max(...at) - Math.min(...at) > 4000, 'spread over most of the window');
    const perSlot = new Map<number, number>();
    for (const t of at) perSlot.set(Math.floor(t / 100), (perSlot.get(Math.floor(t / 100)) ?? 0) + 1);
    assert.ok(Math.max(...perSlot.values()) < 100, `at most ${Math.max(...perSlot.values())} in any 100 ms`);
    assert.deepEqual(h.ll.figures().closed, [['stream', 'drain', 1000]]);
    assert.equal(h.ll.figures().streams, 0);
  });

  test('close-spread 0: all at once, at the next timer of 0 ms', () => {
    const h = harness(0);
    h.open(50);
    h.ll.drain('shutdown');
    assert.equal(h.streams.filter((s) => s.writableEnded).length, 0, 'not synchronously: the app had its turn first');
    h.run();
    assert.ok(h.streams.every((s) => s.endedAt === 1000));
    assert.equal(h.timers(), 1);
  });

  test('what the app (or the client) closed first is not closed again and counts as theirs', () => {
    const h = harness(1000, () => 0.5);
    h.open(3);
    h.ll.drain('reload');
    h.streams[0]!.end(); // the app, told by its signal
    h.streams[1]!.destroy(); // the client went away
    h.run();
    const closed = h.ll.figures().closed.map(([k, by, n]) => `${k}:${by}:${n}`).sort();
    assert.deepEqual(closed, ['stream:app:1', 'stream:client:1', 'stream:drain:1']);
    assert.equal(h.streams[2]!.endedAt, 1500);
  });

  test('a stream begun during the drain gets its moment in what is left of the window', () => {
    const h = harness(1000, () => 0.9);
    h.open(1);
    h.ll.drain('reload'); // due at 1900
    h.clock.t = 1200;
    h.open(1); // drawn at 1900 too, still ahead
    h.run();
    h.clock.t = 2500;
    h.open(1); // its draw (1900) has passed: at once
    h.run();
    assert.deepEqual(h.streams.map((s) => s.endedAt), [1900, 1900, 2500]);
  });

  test('cut: what is left is forced', () => {
    const h = harness(60_000);
    h.open(2);
    h.ll.drain('reload');
    h.ll.cut();
    assert.ok(h.streams.every((s) => s.destroyed));
    assert.deepEqual(h.ll.figures().closed, [['stream', 'forced', 2]]);
  });

  test('spread() itself: sorted, within the window, all at the start for 0', () => {
    const due = spread(Array.from({ length: 1000 }, (_, i) => i), 10, 5000, Math.random);
    assert.ok(due.every((d, i) => d.at >= 10 && d.at <= 5010 && (i === 0 || due[i - 1]!.at <= d.at)));
    assert.ok(spread([1, 2, 3], 10, 0, Math.random).every((d) => d.at === 10));
  });
});

describe('figures', () => {
  test('durations per kind over LONG_LIVED_BUCKETS, with +Inf and the sum', () => {
    const h = harness(0);
    const clock = { t: 0 };
    const old = new FakeStream(performance.now() - 20_000, clock);
    h.ll.stream(old as unknown as CorralResponse);
    h.open(1);
    assert.equal(h.ll.figures().streams, 2);
    old.end();
    h.streams[0]!.end();
    const f = h.ll.figures();
    assert.equal(f.durations.length, 1);
    const [kind, counts, sum] = f.durations[0]!;
    assert.equal(kind, 'stream');
    assert.equal(counts.length, LONG_LIVED_BUCKETS.length + 1);
    assert.equal(counts[0], 1, 'one under 1 s');
    assert.equal(counts[LONG_LIVED_BUCKETS.indexOf(60)], 1, 'one in (15, 60] s');
    assert.ok(sum >= 20 && sum < 21, `sum ${sum}`);
    assert.deepEqual(f.closed, [['stream', 'app', 2]]);
  });
});

describe('the worker\'s own cut before graceful-timeout runs out', () => {
  test('10 % of graceful-timeout, at most 1 s', () => {
    assert.equal(cutMarginMs(30_000), 1000);
    assert.equal(cutMarginMs(2000), 200);
    assert.equal(cutMarginMs(500), 50);
  });
});

describe('a WebSocket\'s access line', () => {
  const base = {
    time: new Date('2026-01-02T03:04:05.678Z'), method: 'GET', url: '/ws', httpVersion: '1.1', status: 101, bytes: 5321,
    durationMs: 65012.3, remoteAddr: '10.0.0.1', requestId: 'rid-1', pid: 42, worker: '1.2', rawHeaders: ['User-Agent', 'ua'],
    res: { getHeader: () => undefined },
  };

  test('json: bytes_in and ws_close after duration_ms; an ordinary line is byte for byte what it was', () => {
    const json = compileAccessFormat('json');
    assert.equal(json({ ...base, bytesIn: 912, wsClose: 1012 }),
      '{"time":"2026-01-02T03:04:05.678Z","remote_addr":"10.0.0.1","method":"GET","url":"/ws","protocol":"HTTP/1.1","status":101,"bytes":5321,"duration_ms":65012.3,"bytes_in":912,"ws_close":1012,"user_agent":"ua","request_id":"rid-1","pid":42,"worker":"1.2"}');
    assert.equal(json({ ...base, status: 200 }),
      '{"time":"2026-01-02T03:04:05.678Z","remote_addr":"10.0.0.1","method":"GET","url":"/ws","protocol":"HTTP/1.1","status":200,"bytes":5321,"duration_ms":65012.3,"user_agent":"ua","request_id":"rid-1","pid":42,"worker":"1.2"}');
  });

  test('templates: {bytes_in} and {ws_close}, "-" on ordinary lines; common is unchanged', () => {
    const t = compileAccessFormat('{status} {bytes} {bytes_in} {ws_close}');
    assert.equal(t({ ...base, bytesIn: 912, wsClose: 1001 }), '101 5321 912 1001');
    assert.equal(t({ ...base, status: 200 }), '200 5321 - -');
    assert.equal(compileAccessFormat('common')({ ...base, bytesIn: 912, wsClose: 1001 }), '10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET /ws HTTP/1.1" 101 5321');
  });
});
