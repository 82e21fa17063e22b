import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startMaster, type FakeChild, type Harness } from '../helpers/fake-runtime.js';

/** What @socket.io/cluster-adapter's worker side sends (socket.io-adapter's MessageType numbers). */
const SERVER_SIDE_EMIT = 9;
const SERVER_SIDE_EMIT_RESPONSE = 10;
const BROADCAST_ACK = 12;
const ADAPTER_CLOSE = 13;

function adapterMessage(uid: string, type: number, extra: Record<string, unknown> = {}) {
  return { source: '_sio_adapter' as const, uid, nsp: '/', type, data: { packet: ['hello', 1] }, ...extra };
}

async function serving(workers: number): Promise<{ h: Harness; w: FakeChild[] }> {
  const h = await startMaster({ workers: String(workers) });
  for (const c of h.rt.alive(1)) c.ready();
  await h.rt.settle();
  return { h, w: h.rt.alive(1) };
}

describe('the master relays the Socket.IO cluster adapter between workers', () => {
  test('a marked message reaches every other worker, unchanged, and not its sender', async () => {
    const { h, w } = await serving(3);
    const [a, b, c] = w as [FakeChild, FakeChild, FakeChild];
    const msg = adapterMessage('uid-a', SERVER_SIDE_EMIT);
    a.sayRaw(msg);
    await h.rt.settle();
    assert.deepEqual(a.relayed, []);
    assert.equal(b.relayed.length, 1);
    assert.equal(c.relayed.length, 1);
    assert.equal(b.relayed[0], msg, 'the object as parsed, not a copy');
    assert.equal(b.relayed[0], c.relayed[0]);
  });

  test('messages without the marker are not relayed; no shape crashes the master', async () => {
    const { h, w } = await serving(2);
    const [a, b] = w as [FakeChild, FakeChild];
    for (const junk of [
      null, 'text', 42, true, [], ['_sio_adapter'], { hello: 1 }, { source: 'other', uid: 'x', type: 9 },
      { t: 'no-such-message' }, { t: 7 }, { source: '_sio_adapter' }, { source: '_sio_adapter', uid: { evil: true }, requesterUid: 5 },
      { source: '_sio_adapter', uid: 'x'.repeat(10_000), type: 2 }, { source: '_sio_adapter', requesterUid: 'nobody', type: 10 },
    ]) {
      a.sayRaw(junk);
    }
    await h.rt.settle();
    const relayed = b.relayed;
    assert.ok(relayed.every((m) => m.source === '_sio_adapter'), 'only marked messages are passed on');
    assert.equal(relayed.length, 2, 'the two marked messages that are not responses');
    assert.ok(!relayed.some((m) => m.requesterUid === 'nobody'), 'a response to an unknown requester goes nowhere');
    assert.deepEqual(a.relayed, []);
    assert.ok(a.sent.every((m) => m.t !== undefined), 'nothing relayed back as a corral message');
    a.say({ t: 'hb', rss: 1, inflight: 0 });
    await h.rt.settle();
    assert.equal(h.rt.alive().length, 2, 'the master still runs its workers');
  });

  test('a response goes only to the worker whose adapter asked', async () => {
    const { h, w } = await serving(3);
    const [a, b, c] = w as [FakeChild, FakeChild, FakeChild];
    a.sayRaw(adapterMessage('uid-a', SERVER_SIDE_EMIT, { data: { requestId: 'r1', packet: ['ping'] } }));
    c.sayRaw(adapterMessage('uid-c', 2));
    await h.rt.settle();
    b.sayRaw(adapterMessage('uid-b', SERVER_SIDE_EMIT_RESPONSE, { requesterUid: 'uid-a', data: { requestId: 'r1', packet: 'pong' } }));
    b.sayRaw(adapterMessage('uid-b', BROADCAST_ACK, { requesterUid: 'uid-c', data: { requestId: 'r2', packet: 1 } }));
    await h.rt.settle();
    assert.deepEqual(a.relayed.map((m) => m.uid), ['uid-c', 'uid-b'], 'A: C\'s heartbeat and its response');
    assert.deepEqual(c.relayed.map((m) => [m.uid, m.type]), [['uid-a', SERVER_SIDE_EMIT], ['uid-b', BROADCAST_ACK]]);
    assert.deepEqual(b.relayed.map((m) => m.uid), ['uid-a', 'uid-c']);
  });

  test('draining workers (they may still have clients) receive while they live; new workers too', async () => {
    const { h, w } = await serving(2);
    for (const c of w) c.exitOnStop = false;
    h.rt.signal('SIGHUP');
    await h.rt.settle();
    const fresh = h.rt.alive(2);
    for (const c of fresh) c.ready();
    await h.rt.settle();
    assert.ok(w.every((c) => c.got('drain')));
    const msg = adapterMessage('uid-new', SERVER_SIDE_EMIT);
    fresh[0]!.sayRaw(msg);
    await h.rt.settle();
    assert.deepEqual([...w, fresh[1]!].map((c) => c.relayed.includes(msg)), [true, true, true]);
    w[0]!.die(0, null);
    await h.rt.settle();
    const next = adapterMessage('uid-new', 2);
    fresh[0]!.sayRaw(next);
    await h.rt.settle();
    assert.ok(!w[0]!.relayed.includes(next), 'nothing is written to a worker that exited');
    assert.ok(w[1]!.relayed.includes(next));
  });

  test('when a worker exits, the others hear that its adapters closed', async () => {
    const { h, w } = await serving(3);
    const [a, b, c] = w as [FakeChild, FakeChild, FakeChild];
    a.sayRaw(adapterMessage('uid-a', 1));
    a.sayRaw({ ...adapterMessage('uid-a2', 1), nsp: '/chat' });
    a.sayRaw(adapterMessage('uid-a', 2));
    await h.rt.settle();
    a.die(1, null);
    await h.rt.settle();
    for (const other of [b, c]) {
      const closes = other.relayed.filter((m) => m.type === ADAPTER_CLOSE);
      assert.deepEqual(closes.map((m) => [m.uid, m.nsp]), [['uid-a', '/'], ['uid-a2', '/chat']]);
    }
    c.sayRaw(adapterMessage('uid-c', SERVER_SIDE_EMIT_RESPONSE, { requesterUid: 'uid-a' }));
    await h.rt.settle();
    assert.ok(!b.relayed.some((m) => m.uid === 'uid-c'), 'a response to the dead worker goes nowhere');
  });

  test('a burst waits for a busy worker; one that reads nothing for 5 s misses messages until it reads again; a closed channel is skipped', async () => {
    const { h, w } = await serving(3);
    const [a, b, c] = w as [FakeChild, FakeChild, FakeChild];
    b.stuck = true;
    c.connected = false;
    for (let i = 0; i < 20_000; i++) a.sayRaw(adapterMessage('uid-a', 3, { data: { i } }));
    await h.rt.settle();
    assert.equal(b.relayed.length, 20_000, 'a burst is not dropped');
    assert.equal(c.relayed.length, 0);
    await h.rt.advance(5001);
    for (let i = 0; i < 10; i++) a.sayRaw(adapterMessage('uid-a', 3));
    await h.rt.settle();
    assert.equal(b.relayed.length, 20_000, 'dropped once nothing was read for 5 s');
    assert.equal(h.lines.filter((l) => /does not read its channel \(none of 20000 Socket\.IO adapter messages read for 5 s\)/.test(l)).length, 1, 'said once');
    b.flush();
    a.sayRaw(adapterMessage('uid-a', 2));
    await h.rt.settle();
    assert.equal(b.relayed.length, 20_001, 'relayed again once it reads');
    assert.ok(h.lines.some((l) => /reads its channel again; 10 Socket\.IO adapter message\(s\) were dropped/.test(l)));
  });

  test('at most 100,000 messages wait for one worker', async () => {
    const { h, w } = await serving(2);
    const [a, b] = w as [FakeChild, FakeChild];
    b.stuck = true;
    const msg = adapterMessage('uid-a', 3);
    for (let i = 0; i < 100_005; i++) a.sayRaw(msg);
    await h.rt.settle();
    assert.equal(b.relayed.length, 100_000);
    assert.ok(h.lines.some((l) => /does not read its channel \(100000 Socket\.IO adapter messages waiting\)/.test(l)));
  });
});
