import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import WebSocket from 'ws';
import { io as ioClient, type Socket as IoSocket } from 'socket.io-client';
import { Corral, runCli } from '../helpers/corral.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

/** How many clients connect at once: enough that both workers get some. */
const CLIENTS = 16;
const WAIT_MS = 5000;

async function serve(fixture: string, env: NodeJS.ProcessEnv = {}, workers = 2): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '-w', String(workers), app(fixture)], { env });
  started.push(c);
  await c.waitReady();
  return { c, port };
}

async function stop(c: Corral): Promise<void> {
  c.signal('SIGQUIT');
  assert.equal((await c.waitExit()).code, 0, c.output);
}

async function reload(c: Corral): Promise<void> {
  const r = await runCli(['reload', '--wait', String(c.pid)]);
  assert.equal(r.code, 0, r.output);
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A WebSocket once its handshake succeeded; rejects with the status when the server answered something else. */
function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return within(WAIT_MS, `handshake with ${url}`, new Promise<WebSocket>((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`${url}: the handshake was answered ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('error', reject);
  }));
}

/** Sends `text` and resolves with the first message back. */
function roundTrip(ws: WebSocket, text: string): Promise<string> {
  return within(WAIT_MS, `echo of ${text}`, new Promise<string>((resolve, reject) => {
    ws.once('message', (data) => resolve(String(data)));
    ws.once('close', (code) => reject(new Error(`closed (${code}) before the echo of ${text}`)));
    ws.send(text);
  }));
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return within(WAIT_MS, 'the close of a WebSocket', new Promise((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: String(reason) }));
  }));
}

/** Rounds of clients a test may open until both workers have answered (the kernel picks the worker). */
const MAX_ROUNDS = 10;

/**
 * Rounds of `CLIENTS` WebSockets at once, each echoing one message (the app prefixes its
 * echo with the worker's PID), until two workers have answered or MAX_ROUNDS: on a loaded
 * machine one worker may accept a whole round. Returns the PIDs that answered.
 */
async function echoes(url: string): Promise<Set<string>> {
  const pids = new Set<string>();
  for (let round = 0; round < MAX_ROUNDS && pids.size < 2; round++) for (const pid of await echoRound(url)) pids.add(pid);
  return pids;
}

async function echoRound(url: string): Promise<Set<string>> {
  const pids = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const ws = await openWs(url);
    try {
      const reply = await roundTrip(ws, `message ${i}`);
      const [pid, ...rest] = reply.split(' ');
      assert.equal(rest.join(' '), `message ${i}`, 'the echo of this client\'s own message');
      return pid!;
    } finally {
      ws.close();
    }
  }));
  return new Set(pids);
}

function ioConnect(port: number, transports?: string[]): Promise<IoSocket> {
  const s = ioClient(`http://127.0.0.1:${port}`, { transports, reconnection: false, forceNew: true });
  return within(WAIT_MS, 'a Socket.IO connection', new Promise<IoSocket>((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('connect_error', (err) => {
      s.close();
      reject(err);
    });
  }));
}

async function ioEcho(s: IoSocket, msg: string): Promise<string> {
  const reply = await within(WAIT_MS, `the ack of ${msg}`, s.emitWithAck('echo', msg) as Promise<{ msg: string; pid: number }>);
  assert.equal(reply.msg, msg);
  return String(reply.pid);
}

/** A raw request head on a fresh connection; resolves with everything the server sent until it closed. */
function rawExchange(port: number, head: string): Promise<string> {
  return within(WAIT_MS, 'a raw exchange', new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(head));
    let got = '';
    sock.on('data', (d) => (got += String(d)));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  }));
}

function getText(port: number, path: string): Promise<string> {
  return within(WAIT_MS, `GET ${path}`, new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += String(d)));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  }));
}

const UPGRADE_HEAD = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Request-Id: no-upgrade\r\n\r\n`;

/** One request with an Upgrade header through node:http; resolves with the status and body the server answered. */
function upgradeAsPlain(port: number, path: string): Promise<{ status: number; body: string }> {
  return within(WAIT_MS, 'an Upgrade request answered as a request', new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'x-request-id': 'plain-upgrade' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    // Node's client hands a 101 to 'upgrade', never to the response callback.
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`upgraded (${res.statusCode})`));
    });
    req.on('error', reject);
    req.end();
  }));
}

describe('the upgrade path', () => {
  test('ws beside Express through the upgrade export: echoes on both workers; a throwing handler answers 500', async () => {
    const { c, port } = await serve('ws-express.mjs');
    const pids = await echoes(`ws://127.0.0.1:${port}/chat`);
    assert.equal(pids.size, 2, `both workers served WebSockets (PIDs ${[...pids].join(', ')})`);
    const refused = await rawExchange(port, UPGRADE_HEAD('/refuse'));
    assert.match(refused, /^HTTP\/1\.1 500 /, 'a handler that throws: a 500 on the raw socket, then it closes');
    await c.waitForLine(/"msg":"upgrade handler failed"/, WAIT_MS);
    assert.match(await getText(port, '/'), /^plain \d+$/, 'requests without Upgrade still go to Express');
    await stop(c);
  });

  test('Socket.IO attached in init: WebSocket-only clients on both workers', async () => {
    const { c, port } = await serve('socketio.mjs');
    const pids = new Set<string>();
    for (let round = 0; round < MAX_ROUNDS && pids.size < 2; round++) {
      const direct = await Promise.all(Array.from({ length: CLIENTS }, () => ioConnect(port, ['websocket'])));
      for (const pid of await Promise.all(direct.map((s, i) => ioEcho(s, `direct ${i}`)))) pids.add(pid);
      for (const s of direct) s.close();
    }
    assert.equal(pids.size, 2, `both workers served Socket.IO clients (PIDs ${[...pids].join(', ')})`);
    await stop(c);
  });

  // A polling session lives in one worker, and the kernel, not corral, chooses the worker of
  // each new connection: long-polling needs a single worker (docs/long-lived.md).
  test('Socket.IO with the default transports, one worker: long-polling, then the upgrade; polling requests get access lines', async () => {
    const { c, port } = await serve('socketio.mjs', {}, 1);
    const polling = await Promise.all(Array.from({ length: 4 }, () => ioConnect(port)));
    await Promise.all(polling.map((s, i) => ioEcho(s, `first ${i}`)));
    // Then each upgrades to a WebSocket on the same worker (engine.io's upgrade).
    await within(WAIT_MS, 'the upgrade from polling', Promise.all(polling.map((s) => s.io.engine.transport.name === 'websocket'
      ? undefined
      : new Promise<void>((resolve) => s.io.engine.once('upgrade', () => resolve())))));
    for (const [i, s] of polling.entries()) {
      assert.equal(s.io.engine.transport.name, 'websocket');
      await ioEcho(s, `upgraded ${i}`);
      s.close();
    }
    // engine.io answers its own path without corral's request listener: corral counts and
    // logs those requests all the same. Each client's handshake was a polling GET.
    const handshakes = (): string[] => c.lines.filter((l) => /"method":"GET","url":"\/socket\.io\/\?EIO=4&transport=polling&t=[^"&]*","[^]*"status":200/.test(l));
    await within(WAIT_MS, 'the polling handshakes\' access lines', (async () => {
      while (handshakes().length < polling.length) await new Promise((r) => setTimeout(r, 50));
    })());
    // A request answered by engine.io has begun in corral like any other: its id is echoed.
    const own = await within(WAIT_MS, 'a polling handshake', new Promise<{ status: number; id: unknown }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/socket.io/?EIO=4&transport=polling', agent: false, headers: { 'x-request-id': 'eio-handshake' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, id: res.headers['x-request-id'] }));
      });
      req.on('error', reject);
      req.end();
    }));
    assert.deepEqual(own, { status: 200, id: 'eio-handshake' });
    assert.equal((JSON.parse(await c.waitForLine(/"request_id":"eio-handshake"/, WAIT_MS)) as { status: number }).status, 200);
    await stop(c);
  });

  test('@fastify/websocket as its README shows, nothing for corral: echoes on both workers', async () => {
    const { c, port } = await serve('fastify-ws.mjs');
    const pids = await echoes(`ws://127.0.0.1:${port}/ws`);
    assert.equal(pids.size, 2, `both workers served WebSockets (PIDs ${[...pids].join(', ')})`);
    await stop(c);
  });

  test('Hono with @hono/node-ws (injectWebSocket in init): echoes on both workers; getConnInfo has the client\'s address', async () => {
    const { c, port } = await serve('hono-ws.mjs');
    const pids = await echoes(`ws://127.0.0.1:${port}/ws`);
    assert.equal(pids.size, 2, `both workers served WebSockets (PIDs ${[...pids].join(', ')})`);
    const info = await within(WAIT_MS, 'conninfo', new Promise<{ body: string; localPort: number }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/conninfo', agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += String(d)));
        res.on('end', () => resolve({ body, localPort: req.socket!.localPort! }));
      });
      req.on('error', reject);
      req.end();
    }));
    const remote = JSON.parse(info.body) as { address: string; port: number; addressType: string };
    assert.deepEqual(remote, { address: '127.0.0.1', port: info.localPort, addressType: 'IPv4' }, 'the fetch app got { incoming, outgoing }');
    await stop(c);
  });

  const RELOADED: Array<{ name: string; fixture: string; path: string }> = [
    { name: 'the upgrade export (ws)', fixture: 'ws-express.mjs', path: '/chat' },
    { name: '@hono/node-ws', fixture: 'hono-ws.mjs', path: '/ws' },
    { name: '@fastify/websocket', fixture: 'fastify-ws.mjs', path: '/ws' },
    { name: 'an upgrade listener added in init after an await', fixture: 'ws-async-init.mjs', path: '/ws' },
  ];
  for (const r of RELOADED) {
    test(`${r.name}: every handshake during a HUP and right after it upgrades (no 200/400/404 window)`, async () => {
      const { c, port } = await serve(r.fixture);
      const url = `ws://127.0.0.1:${port}${r.path}`;
      const before = new Set((await c.workerPids()).map(String));
      // Handshakes all through the reload: a new worker's first connections among them.
      let reloading = true;
      const answered: string[] = [];
      const during = Promise.all(Array.from({ length: 4 }, async () => {
        while (reloading) {
          const ws = await openWs(url);
          ws.on('error', () => {});
          answered.push(String(ws.readyState));
          ws.close();
        }
      }));
      await reload(c);
      const pids = await echoes(url);
      reloading = false;
      await during;
      assert.ok(answered.length > 0, 'handshakes went on during the reload');
      assert.ok([...pids].some((p) => !before.has(p)), `the new generation served the clients right after the reload (PIDs ${[...pids].join(', ')}; before: ${[...before].join(', ')})`);
      await stop(c);
    });
  }

  test('Socket.IO: io.close() at the drain signal disconnects the old clients; right after a HUP, every client connects to the new generation', async () => {
    const { c, port } = await serve('socketio.mjs');
    const before = new Set((await c.workerPids()).map(String));
    const old = await Promise.all(Array.from({ length: 4 }, () => ioConnect(port, ['websocket'])));
    const gone = Promise.all(old.map((s) => new Promise<string>((resolve) => s.once('disconnect', (reason, details) => {
      resolve(`${reason} ${(details as { context?: { code?: number } } | undefined)?.context?.code}`);
    }))));
    await reload(c);
    // 1005: a close frame without a code, as engine.io's close sends it; a cut connection would be 1006.
    assert.deepEqual(await within(WAIT_MS, 'the old clients\' disconnect', gone), old.map(() => 'transport close 1005'), 'closed by the app at the drain');
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => ioConnect(port, ['websocket'])));
    const pids = new Set(await Promise.all(clients.map((s, i) => ioEcho(s, `after ${i}`))));
    for (const s of clients) s.close();
    assert.ok([...pids].some((p) => !before.has(p)), `new workers answered (PIDs ${[...pids].join(', ')})`);
    await stop(c);
  });
});

describe('the drain signal', () => {
  test('the app hears reason "reload" at a HUP and "shutdown" at QUIT: its clients see 1012 and 1001, not 1006', async () => {
    const { c, port } = await serve('ws-express.mjs');
    const url = `ws://127.0.0.1:${port}/chat`;
    const first = await Promise.all(Array.from({ length: 6 }, () => openWs(url)));
    const firstClosed = Promise.all(first.map(closeOf));
    await reload(c);
    for (const got of await firstClosed) assert.deepEqual(got, { code: 1012, reason: 'reload' });
    const second = await Promise.all(Array.from({ length: 6 }, () => openWs(url)));
    const secondClosed = Promise.all(second.map(closeOf));
    c.signal('SIGQUIT');
    for (const got of await secondClosed) assert.deepEqual(got, { code: 1001, reason: 'shutdown' });
    assert.equal((await c.waitExit()).code, 0);
  });

  test('the reason is "scale-down" for the worker TTOU retires; "shutdown" for a worker sent TERM itself', async () => {
    const { c, port } = await serve('ws-express.mjs');
    const url = `ws://127.0.0.1:${port}/chat`;
    /** Clients that answered, each with the PID of its worker and its close to come. */
    const connectAll = (n: number) => Promise.all(Array.from({ length: n }, async (_, i) => {
      const ws = await openWs(url);
      const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
      const pid = (await roundTrip(ws, `hello ${i}`)).split(' ')[0]!;
      return { ws, pid, closed };
    }));
    const clients: Awaited<ReturnType<typeof connectAll>> = [];
    for (let round = 0; round < MAX_ROUNDS && new Set(clients.map((x) => x.pid)).size < 2; round++) clients.push(...await connectAll(CLIENTS));
    assert.equal(new Set(clients.map((x) => x.pid)).size, 2, 'clients on both workers');
    c.signal('SIGTTOU');
    const first = await within(WAIT_MS, 'a close after TTOU', Promise.race(clients.map(async (x) => ({ pid: x.pid, got: await x.closed }))));
    assert.deepEqual(first.got, { code: 1012, reason: 'scale-down' });
    const retired = clients.filter((x) => x.pid === first.pid);
    for (const x of retired) assert.deepEqual(await within(WAIT_MS, 'the close of a retired worker\'s client', x.closed), { code: 1012, reason: 'scale-down' });
    const kept = clients.filter((x) => x.pid !== first.pid);
    assert.ok(kept.length > 0 && kept.every((x) => x.ws.readyState === WebSocket.OPEN), 'the other worker\'s clients stay');
    process.kill(Number(kept[0]!.pid), 'SIGTERM');
    for (const x of kept) assert.deepEqual(await within(WAIT_MS, 'the close of a TERMed worker\'s client', x.closed), { code: 1001, reason: 'shutdown' });
    await stop(c);
  });

  test('the reason is "shutdown" for a worker whose master is gone', async () => {
    const { c, port } = await serve('ws-express.mjs');
    const clients = await Promise.all(Array.from({ length: 6 }, () => openWs(`ws://127.0.0.1:${port}/chat`)));
    const closed = Promise.all(clients.map(closeOf));
    process.kill(c.pid, 'SIGKILL');
    for (const got of await closed) assert.deepEqual(got, { code: 1001, reason: 'shutdown' });
    c.kill();
  });

  test('a Fastify instance with an init export: ready() runs first, @fastify/websocket serves, its clients see 1001 at QUIT', async () => {
    const { c, port } = await serve('fastify-ws-signal.mjs');
    const url = `ws://127.0.0.1:${port}/ws`;
    assert.equal((await echoes(url)).size, 2);
    const clients = await Promise.all(Array.from({ length: 4 }, () => openWs(url)));
    const closed = Promise.all(clients.map(closeOf));
    c.signal('SIGQUIT');
    for (const got of await closed) assert.deepEqual(got, { code: 1001, reason: 'shutdown' });
    assert.equal((await c.waitExit()).code, 0);
  });

  test('an abort listener that throws is logged and the drain goes on', async () => {
    const { c, port } = await serve('ws-express.mjs', { THROW_AT_DRAIN: '1' });
    const clients = await Promise.all(Array.from({ length: 4 }, () => openWs(`ws://127.0.0.1:${port}/chat`)));
    const closed = Promise.all(clients.map(closeOf));
    c.signal('SIGQUIT');
    for (const got of await closed) assert.deepEqual(got, { code: 1001, reason: 'shutdown' });
    assert.equal((await c.waitExit()).code, 0);
    assert.ok(c.lines.some((l) => l.includes('drain-signal listener threw') && l.includes('an abort listener that fails')), c.output);
    assert.ok(!c.lines.some((l) => l.includes('asking for a replacement')), 'not taken for an uncaught exception in the app');
  });

  test('Server-Sent Events: the app ends its streams with the reason, and the clients see a clean end', async () => {
    const { c, port } = await serve('sse-express.mjs');
    // Resolves at the first event, with the whole body to come (an object: a promise would be adopted).
    const stream = (): Promise<{ ended: Promise<string> }> => within(WAIT_MS, 'an event stream', new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
        let body = '';
        const ended = new Promise<string>((done, fail) => {
          res.on('data', (d) => (body += String(d)));
          res.on('end', () => done(body));
          res.on('error', fail);
          req.on('error', fail);
        });
        res.once('data', () => resolve({ ended: within(WAIT_MS, 'the end of the stream', ended) }));
      });
      req.on('error', reject);
      req.end();
    }));
    const atReload = await stream();
    await reload(c);
    assert.match(await atReload.ended, /^data: hello from \d+\n\nevent: bye\ndata: reload\n\n$/);
    const atStop = await stream();
    c.signal('SIGQUIT');
    assert.match(await atStop.ended, /event: bye\ndata: shutdown\n\n$/);
    assert.equal((await c.waitExit()).code, 0);
  });
});

describe('apps without an upgrade handler', () => {
  for (const a of [{ name: 'Express', fixture: 'express-app.mjs', body: /"framework":"express"/ }, { name: 'Fastify without a WebSocket plugin', fixture: 'fastify-app.mjs', body: /"framework":"fastify"/ }]) {
    test(`${a.name}: an Upgrade request is answered by the request handler, as before, and logged`, async () => {
      const { c, port } = await serve(a.fixture);
      const got = await upgradeAsPlain(port, '/');
      assert.equal(got.status, 200);
      assert.match(got.body, a.body);
      const line = JSON.parse(await c.waitForLine(/"request_id":"plain-upgrade"/, WAIT_MS)) as { status: number };
      assert.equal(line.status, 200);
      const client = await openWs(`ws://127.0.0.1:${port}/`).then(() => 'opened', (e: Error) => e.message);
      assert.match(client, /answered 200/, 'a WebSocket client is told the server does not upgrade');
      await stop(c);
    });
  }
});
