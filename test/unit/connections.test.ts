import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Socket } from 'node:net';
import { ConnectionTracker } from '../../src/worker/connections.js';
import { PathServer, RawClient, until } from '../helpers/request-path.js';

const servers: PathServer[] = [];
const clients: RawClient[] = [];
after(() => {
  clients.forEach((c) => c.destroy());
  servers.forEach((s) => s.close());
});

/** A server whose drain delays run on a clock the test moves by hand (t, in ms). */
async function drainable(app: ConstructorParameters<typeof PathServer>[0] = (_req, res) => res.end('ok')) {
  const clock = { t: 0 };
  const s = await new PathServer(app, new ConnectionTracker({ pollMs: 5 }, () => clock.t)).listen();
  servers.push(s);
  return { s, clock };
}

async function client(port: number, allowHalfOpen = false): Promise<RawClient> {
  const c = new RawClient(port, allowHalfOpen);
  clients.push(c);
  await c.connected();
  return c;
}

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
/** Long enough for many of the drain's polls (every 5 ms) to have run. */
const manyPolls = () => new Promise((r) => setTimeout(r, 100));

describe('drain timing', () => {
  test('an idle kept connection is closed once idle for 1 s on the clock, not before', async () => {
    const { s, clock } = await drainable();
    const c = await client(s.port);
    c.send(GET);
    await c.waitFor('ok');
    await until(() => s.tracker.inflightCount === 0, 'the request to be done');
    let drained = false;
    void s.tracker.drain().then(() => (drained = true));
    clock.t = 999;
    await manyPolls();
    assert.equal(c.ended, false, 'still open 1 ms before the idle delay');
    clock.t = 1000;
    await until(() => c.ended, 'our FIN');
    c.socket.end();
    await until(() => drained, 'the drain to finish');
  });

  test('a connection that carried no request yet waits 2 s: its request may be in the kernel buffer', async () => {
    const { s, clock } = await drainable();
    const c = await client(s.port);
    await until(() => s.server.listenerCount('connection') > 0 && c.socket.localPort !== undefined, 'connected');
    void s.tracker.drain();
    clock.t = 1500;
    await manyPolls();
    assert.equal(c.ended, false, 'a fresh connection is not closed after the idle delay');
    // Its request arrives late: it is still served, with Connection: close.
    c.send(GET);
    await c.waitFor('ok');
    assert.match(c.got, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(c.got, /\r\nConnection: close\r\n/i);
    await until(() => c.ended, 'the server to close after the answer');
  });

  test('an in-flight request is answered with Connection: close, and the drain ends with it', async () => {
    let release: () => void = () => {};
    const { s } = await drainable((_req, res) => {
      release = () => res.end('late');
    });
    const c = await client(s.port);
    c.send(GET);
    await until(() => s.tracker.inflightCount === 1, 'the request to be in flight');
    let drained = false;
    void s.tracker.drain().then(() => (drained = true));
    await manyPolls();
    assert.equal(drained, false, 'a drain waits for the request in flight');
    release();
    await c.waitFor('late');
    assert.match(c.got, /\r\nConnection: close\r\n/i);
    await until(() => c.ended, 'the server to close after the answer');
    await until(() => drained, 'the drain to finish');
    assert.equal(s.records().length, 1);
    assert.equal(s.records()[0]!.status, 200);
  });

  test('a peer that ignores our FIN is cut 1 s after it, so it cannot hold the drain', async () => {
    const { s, clock } = await drainable();
    const c = await client(s.port, true);
    c.send(GET);
    await c.waitFor('ok');
    await until(() => s.tracker.inflightCount === 0, 'the request to be done');
    let drained = false;
    void s.tracker.drain().then(() => (drained = true));
    clock.t = 1000;
    await until(() => c.ended, 'our FIN');
    // The client keeps its end open.
    clock.t = 1999;
    await manyPolls();
    assert.equal(c.closed, false, 'not cut before the FIN delay');
    assert.equal(drained, false);
    clock.t = 2000;
    // The drain ends only once every connection is closed on our side.
    await until(() => drained, 'the drain to finish once the silent peer is cut');
  });

  test('a connection closed under a request is no longer in flight, and the request is logged as 499', async () => {
    const { s } = await drainable(() => {});
    const c = await client(s.port);
    c.send('GET /never HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => s.tracker.inflightCount === 1, 'the request to be in flight');
    c.destroy();
    const [rec] = await s.waitRecords(1);
    assert.equal(rec!.status, 499);
    assert.equal(rec!.url, '/never');
    assert.equal(s.tracker.inflightCount, 0);
  });
});

describe('balance', () => {
  test('a worker over its share of kept connections tells one client to reconnect, once', async () => {
    const { s } = await drainable();
    const a = await client(s.port);
    const b = await client(s.port);
    for (const c of [a, b]) {
      c.send(GET);
      await c.waitFor('ok');
      c.send(GET);
      await c.waitFor('ok', 2);
    }
    assert.equal(s.tracker.keptIfChanged(), 2);
    assert.equal(s.tracker.keptIfChanged(), undefined, 'reported once per change');
    s.tracker.balance(1);
    a.send(GET);
    await a.waitFor('ok', 3);
    b.send(GET);
    await b.waitFor('ok', 3);
    const closes = [a, b].filter((c) => /\r\nConnection: close\r\n/i.test(c.got)).length;
    assert.equal(closes, 1, 'one of the two is shed');
  });
});

describe('TLS handshakes under way', () => {
  const socket = (): Socket => {
    const s = { destroyed: false, destroy: () => void (s.destroyed = true) };
    return s as unknown as Socket;
  };

  test('a drain waits for a handshake to settle, once, however it ends', async () => {
    const tracker = new ConnectionTracker({ pollMs: 5 });
    const settled = tracker.handshake(socket());
    let drained = false;
    void tracker.drain().then(() => (drained = true));
    await manyPolls();
    assert.equal(drained, false, 'a handshake under way holds the drain');
    settled();
    settled();
    await until(() => drained, 'the drain to end');
    const again = new ConnectionTracker({ pollMs: 5 });
    const one = again.handshake(socket());
    const two = again.handshake(socket());
    one();
    one();
    let done = false;
    void again.drain().then(() => (done = true));
    await manyPolls();
    assert.equal(done, false, 'settling one twice does not settle the other');
    two();
    await until(() => done, 'the drain to end');
  });

  test('a client that connects and never finishes its handshake is closed by a drain after freshMs', async () => {
    const clock = { t: 0 };
    const tracker = new ConnectionTracker({ pollMs: 5, freshMs: 2000 }, () => clock.t);
    const silent = socket();
    tracker.handshake(silent);
    let drained = false;
    void tracker.drain().then(() => (drained = true));
    clock.t = 1999;
    await manyPolls();
    assert.equal(silent.destroyed, false);
    assert.equal(drained, false);
    clock.t = 2000;
    await until(() => drained, 'the drain to end');
    assert.equal(silent.destroyed, true);
  });
});
