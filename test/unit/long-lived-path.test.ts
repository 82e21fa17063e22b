/**
 * Long-lived connections through a worker's real request path (PathServer) on loopback:
 * real `ws` servers and clients, real SSE over http.get.
 */
import assert from 'node:assert/strict';
import { get as httpGet, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { ConnectionTracker } from '../../src/worker/connections.js';
import { PathServer, RawClient, until, type App } from '../helpers/request-path.js';
import type { LongLivedOptions } from '../../src/worker/long-lived.js';

const servers: PathServer[] = [];
const sockets: WebSocket[] = [];
after(() => {
  sockets.forEach((s) => s.terminate());
  servers.forEach((s) => s.close());
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A PathServer whose 'upgrade' requests go to a ws server, as the worker hands them to an app. */
async function wsServer(opts: LongLivedOptions = {}, app: App = (_req, res) => res.end('ok'), onConnection?: (ws: WebSocket) => void, tracker = new ConnectionTracker({ pollMs: 5 }), passHead = true) {
  const s = new PathServer(app, tracker, {}, { closeWaitMs: 300, ...opts });
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => {
    ws.on('message', (m) => ws.send(`echo ${String(m)}`));
    onConnection?.(ws);
  });
  s.server.on('upgrade', (req, socket, head) => {
    if (passHead) s.longLived.upgraded(req, socket, head);
    else s.longLived.upgraded(req, socket);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await s.listen();
  servers.push(s);
  return { s, wss };
}

interface Client {
  ws: WebSocket;
  code: Promise<number>;
}

async function wsClient(port: number, path = '/ws'): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  sockets.push(ws);
  ws.on('error', () => {});
  const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, code };
}

async function roundTrip(c: Client, text: string): Promise<void> {
  const got = new Promise<void>((resolve) => c.ws.once('message', () => resolve()));
  c.ws.send(text);
  await got;
}

describe('WebSockets through the request path', () => {
  for (const [reason, code] of [['reload', 1012], ['shutdown', 1001], ['recycle', 1012], ['scale-down', 1012]] as const) {
    test(`a ${reason} drain sends ${code}: the client sees it, and the access line has 101, bytes, duration, the code`, async () => {
      const { s } = await wsServer({ settings: { spreadMs: 0, closeReload: 1012, closeStop: 1001 } });
      const c = await wsClient(s.port);
      await roundTrip(c, 'hello');
      await sleep(50);
      void s.tracker.drain();
      s.longLived.drain(reason);
      assert.equal(await c.code, code);
      const [rec] = await s.waitRecords(1);
      assert.equal(rec!.status, 101);
      assert.equal(rec!.ws_close, code);
      assert.equal(rec!.url, '/ws');
      assert.ok(rec!.duration_ms >= 50, `duration ${rec!.duration_ms}`);
      // In: the masked "hello" frame (6 + 5) and the client's close frame (6 + 2); out: the echo
      // (2 + 10) and at least corral's close frame.
      assert.ok(rec!.bytes_in! >= 11 + 8, `bytes_in ${rec!.bytes_in}`);
      assert.ok(rec!.bytes! >= 12 + 4, `bytes ${rec!.bytes}`);
      const f = s.longLived.figures();
      assert.equal(f.websockets, 0);
      assert.deepEqual(f.closed, [['websocket', 'drain', 1]]);
    });
  }

  test('the client closes: its code is logged, the close is the client\'s, byte counts are exact', async () => {
    const { s } = await wsServer();
    const c = await wsClient(s.port);
    await roundTrip(c, 'abc');
    c.ws.close(4001, 'bye');
    assert.equal(await c.code, 4001);
    const [rec] = await s.waitRecords(1);
    assert.equal(rec!.ws_close, 4001);
    // In: "abc" masked (2 + 4 + 3) and the close (2 + 4 + 2 + 3); out: "echo abc" (2 + 8) and the echoed close (2 + 2 + 3).
    assert.equal(rec!.bytes_in, 9 + 11);
    assert.equal(rec!.bytes, 10 + 7);
    assert.deepEqual(s.longLived.figures().closed, [['websocket', 'client', 1]]);
  });

  for (const passHead of [true, false]) {
    test(`frames sent with the handshake, in one packet, are counted and read (the head ${passHead ? 'passed' : 'not passed'} to upgraded())`, async () => {
      const { s } = await wsServer({}, undefined, undefined, undefined, passHead);
      const c = new RawClient(s.port);
      await c.connected();
      // Masked with a zero key: the payload reads as sent.
      const text = Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]);
      const close = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x11, 0x5c]); // 4444
      c.socket.write(Buffer.concat([Buffer.from('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'), text, close]));
      await c.waitClosed();
      const [rec] = await s.waitRecords(1);
      assert.equal(rec!.status, 101);
      assert.equal(rec!.ws_close, 4444);
      assert.equal(rec!.bytes_in, 16);
      assert.match(c.got, /^HTTP\/1\.1 101 /);
      assert.deepEqual(s.longLived.figures().closed, [['websocket', 'client', 1]]);
      c.destroy();
    });
  }

  test('the app closes first: "app", with the app\'s code', async () => {
    const { s } = await wsServer({}, undefined, (ws) => setTimeout(() => ws.close(4100), 30));
    const c = await wsClient(s.port);
    assert.equal(await c.code, 4100);
    const [rec] = await s.waitRecords(1);
    assert.equal(rec!.ws_close, 4100);
    assert.deepEqual(s.longLived.figures().closed, [['websocket', 'app', 1]]);
  });

  test('a client that vanishes without a close frame: 1006', async () => {
    const { s } = await wsServer();
    const c = await wsClient(s.port);
    await roundTrip(c, 'x');
    c.ws.terminate();
    const [rec] = await s.waitRecords(1);
    assert.equal(rec!.ws_close, 1006);
    assert.equal(rec!.status, 101);
  });

  test('a drain leaves alone a WebSocket the app closes when told, and corral sends no second close', async () => {
    const { s } = await wsServer({ settings: { spreadMs: 200, closeReload: 1012, closeStop: 1001 } }, undefined, (ws) => {
      ws.on('message', (m) => {
        if (String(m) === 'drain') ws.close(4200, 'app says bye');
      });
    });
    const c = await wsClient(s.port);
    s.longLived.drain('reload');
    c.ws.send('drain');
    assert.equal(await c.code, 4200);
    await s.waitRecords(1);
    await sleep(300);
    assert.deepEqual(s.longLived.figures().closed, [['websocket', 'app', 1]]);
  });

  test('a WebSocket cut at the deadline is logged with 1006 and counted as forced', async () => {
    const { s } = await wsServer({ settings: { spreadMs: 0, closeReload: 1012, closeStop: 1001 }, closeWaitMs: 200 });
    const c = await wsClient(s.port);
    await roundTrip(c, 'x');
    s.longLived.cut();
    await c.code;
    const [rec] = await s.waitRecords(1);
    assert.equal(rec!.ws_close, 1006);
    assert.deepEqual(s.longLived.figures().closed, [['websocket', 'forced', 1]]);
  });

  test('a paused socket stays paused: corral reads frames as they arrive, without resuming it', async () => {
    let serverWs: WebSocket | undefined;
    const { s } = await wsServer({ settings: { spreadMs: 0, closeReload: 1012, closeStop: 1001 } }, undefined, (ws) => (serverWs = ws));
    const c = await wsClient(s.port);
    await until(() => serverWs !== undefined, 'the server side');
    serverWs!.pause();
    const got: string[] = [];
    serverWs!.on('message', (m) => got.push(String(m)));
    c.ws.send('one');
    c.ws.close(4321);
    await sleep(100);
    assert.deepEqual(got, [], 'nothing was delivered to the paused app');
    assert.equal(s.records().length, 0);
    // corral has seen the client's close frame the app has not read: its drain sends none.
    s.longLived.drain('reload');
    await sleep(50);
    serverWs!.resume();
    assert.equal(await c.code, 4321);
    const [rec] = await s.waitRecords(1);
    assert.equal(rec!.ws_close, 4321);
    assert.deepEqual(got, ['one']);
    assert.deepEqual(s.longLived.figures().closed, [['websocket', 'client', 1]]);
  });

  test('an upgrade counts once for max-requests; balance never sheds an upgraded connection', async () => {
    const { s } = await wsServer();
    const c = await wsClient(s.port);
    assert.equal(s.counted, 1);
    s.tracker.balance(0);
    await roundTrip(c, 'still here');
    assert.equal(s.tracker.keptIfChanged() ?? 0, 0, 'an upgraded connection is not a kept connection');
    assert.equal(c.ws.readyState, WebSocket.OPEN);
  });

  test('a drain of the tracker does not close an idle upgraded socket as idle', async () => {
    const { s } = await wsServer({ settings: { spreadMs: 60_000, closeReload: 1012, closeStop: 1001 } }, undefined, undefined, new ConnectionTracker({ pollMs: 5, freshMs: 50, idleMs: 50, finMs: 50 }));
    const c = await wsClient(s.port);
    void s.tracker.drain();
    await sleep(300);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await roundTrip(c, 'alive');
  });
});

/** An SSE endpoint that never ends on its own; `writeHead` chooses how the head is set. */
function sseApp(how: 'setHeader' | 'writeHead' | 'array'): App {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/events') return res.end('plain');
    if (how === 'setHeader') {
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.write('data: first\n\n');
    } else if (how === 'writeHead') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
    } else {
      res.writeHead(200, 'OK', ['Content-Type', 'text/event-stream']);
      res.write('data: first\n\n');
    }
    return undefined;
  };
}

interface SseClient {
  req: ClientRequest;
  first: Promise<void>;
  /** Settles with the body when the response ends, or 'aborted'/the error code. */
  outcome: Promise<string>;
}

function sseClient(port: number, headers: Record<string, string> = {}): SseClient {
  let gotFirst!: () => void;
  const first = new Promise<void>((r) => (gotFirst = r));
  let req!: ClientRequest;
  const outcome = new Promise<string>((resolve) => {
    req = httpGet({ host: '127.0.0.1', port, path: '/events', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.includes('first')) gotFirst();
      });
      res.on('end', () => resolve(`end:${body}`));
      res.on('aborted', () => resolve('aborted'));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  return { req, first, outcome };
}

describe('Server-Sent Events through the request path', () => {
  for (const how of ['setHeader', 'writeHead', 'array'] as const) {
    test(`a stream (${how}) is ended cleanly by a drain: the client reads the end of the body, one access line`, async () => {
      const s = await new PathServer(sseApp(how), new ConnectionTracker({ pollMs: 5 }), {}, { settings: { spreadMs: 0, closeReload: 1012, closeStop: 1001 } }).listen();
      servers.push(s);
      const c = sseClient(s.port);
      await c.first;
      assert.equal(s.longLived.figures().streams, 1);
      assert.equal(s.tracker.oldest(), undefined, 'a stream is not the request a busy worker is stuck on');
      void s.tracker.drain();
      s.longLived.drain('shutdown');
      assert.equal(await c.outcome, 'end:data: first\n\n');
      const [rec] = await s.waitRecords(1);
      assert.equal(rec!.status, 200);
      assert.equal(rec!.bytes, 'data: first\n\n'.length);
      assert.equal(rec!.ws_close, undefined);
      const f = s.longLived.figures();
      assert.equal(f.streams, 0);
      assert.deepEqual(f.closed, [['stream', 'drain', 1]]);
    });
  }

  test('a stream on a connection balance chose to shed is not shed; the budget goes to the next kept request', async () => {
    const s = await new PathServer(sseApp('setHeader')).listen();
    servers.push(s);
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Make the connection a kept one first: two plain requests.
      for (let i = 0; i < 2; i++) {
        await new Promise<void>((resolve) => httpGet({ host: '127.0.0.1', port: s.port, path: '/', agent }, (r) => r.resume().on('end', resolve)));
      }
      s.tracker.balance(0);
      const headers = await new Promise<IncomingMessage['headers']>((resolve) => {
        httpGet({ host: '127.0.0.1', port: s.port, path: '/events', agent }, (r) => {
          resolve(r.headers);
          r.resume();
        });
      });
      assert.notEqual(headers.connection, 'close');
      assert.equal(s.longLived.figures().streams, 1);
    } finally {
      agent.destroy();
    }
  });

  test('a stream that lasts is not a slow request; a plain request as slow is', async () => {
    let ender: ServerResponse | undefined;
    const app: App = (req, res) => {
      if (req.url === '/events') {
        sseApp('setHeader')(req, res);
        ender = res;
      } else {
        setTimeout(() => res.end('late'), 150);
      }
    };
    const s = await new PathServer(app, new ConnectionTracker(), { slowMs: 50 }).listen();
    servers.push(s);
    const a = sseClient(s.port);
    await a.first;
    await new Promise((r) => setTimeout(r, 150));
    ender!.end();
    assert.match(await a.outcome, /^end:/);
    await new Promise<void>((resolve) => httpGet({ host: '127.0.0.1', port: s.port, path: '/plain' }, (r) => r.resume().on('end', resolve)));
    await s.waitRecords(2);
    const slow = s.errors.filter((l) => /slow request/.test(l));
    assert.equal(slow.length, 1, slow.join(''));
    assert.match(slow[0]!, /\/plain/);
  });

  test('the client goes away: "client"; the app ends it: "app"', async () => {
    let ender: ServerResponse | undefined;
    const app: App = (req, res) => {
      sseApp('setHeader')(req, res);
      if (req.headers['x-end'] === '1') ender = res;
    };
    const s = await new PathServer(app).listen();
    servers.push(s);
    const a = sseClient(s.port);
    await a.first;
    const b = sseClient(s.port, { 'x-end': '1' });
    await b.first;
    ender!.end('data: last\n\n');
    assert.match(await b.outcome, /^end:/);
    await until(() => s.longLived.figures().streams === 1, 'one stream to remain');
    a.req.destroy();
    await until(() => s.longLived.figures().streams === 0, 'both streams closed');
    const closed = s.longLived.figures().closed.map(([k, by, n]) => `${k}:${by}:${n}`).sort();
    assert.deepEqual(closed, ['stream:app:1', 'stream:client:1']);
    const recs = await s.waitRecords(2);
    assert.deepEqual(recs.map((r) => r.status).sort(), [200, 200]);
  });

  test('an Express stream (its response\'s prototype replaced per request) is seen and ended all the same', async () => {
    const { default: express } = await import('express');
    const app = express();
    app.get('/events', (_req, res) => {
      res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.flushHeaders();
      res.write('data: first\n\n');
    });
    const s = await new PathServer(app as unknown as App, new ConnectionTracker({ pollMs: 5 }), {}, { settings: { spreadMs: 0, closeReload: 1012, closeStop: 1001 } }).listen();
    servers.push(s);
    const c = sseClient(s.port);
    await c.first;
    assert.equal(s.longLived.figures().streams, 1);
    s.longLived.drain('reload');
    assert.equal(await c.outcome, 'end:data: first\n\n');
    const [rec] = await s.waitRecords(1);
    assert.equal(rec!.status, 200);
    assert.deepEqual(s.longLived.figures().closed, [['stream', 'drain', 1]]);
  });

  test('an ordinary response is not a stream', async () => {
    const s = await new PathServer(sseApp('setHeader')).listen();
    servers.push(s);
    await new Promise<void>((resolve) => httpGet({ host: '127.0.0.1', port: s.port, path: '/' }, (r) => r.resume().on('end', resolve)));
    await s.waitRecords(1);
    assert.deepEqual(s.longLived.figures(), { websockets: 0, streams: 0, closed: [], durations: [] });
  });
});
