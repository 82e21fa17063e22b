import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { after, describe, test } from 'node:test';
import { createLogger } from '../../src/logging/logger.js';
import { AccessBatch } from '../../src/worker/access-log.js';
import { fetchHandler } from '../../src/worker/fetch-adapter.js';
import type { UpgradeHandler } from '../../src/worker/app-shape.js';
import { ConnectionTracker } from '../../src/worker/connections.js';
import { LongLived } from '../../src/worker/long-lived.js';
import { RequestHandler } from '../../src/worker/request-handler.js';
import { RequestLog } from '../../src/worker/request-log.js';
import { corralServer, serveUpgrades } from '../../src/worker/server.js';
import { RawClient, until } from '../helpers/request-path.js';

const servers: Server[] = [];
const clients: RawClient[] = [];
after(() => {
  clients.forEach((c) => c.destroy());
  servers.forEach((s) => s.close());
});

/** Records each upgraded socket, in the order of everything else the test records. */
class Recording extends LongLived {
  constructor(private readonly events: string[]) {
    super();
  }

  override upgraded(req: IncomingMessage, _socket: Duplex): void {
    this.events.push(`corral ${req.url}`);
  }
}

/** One of a worker's servers, on a loopback port, with what it logs and what its LongLived heard. */
async function server(app: (req: IncomingMessage, res: ServerResponse) => unknown, upgrade?: UpgradeHandler) {
  const events: string[] = [];
  const errors: string[] = [];
  const writes: string[] = [];
  const log = createLogger({ level: 'info', base: {} }, { write: (l: string) => errors.push(l) });
  const batch = new AccessBatch({ write: (lines: string) => { writes.push(lines); return lines.length; } });
  const requests = new RequestLog({ format: 'json', prefix: '', slowMs: 0, worker: '1.1', log }, batch);
  const tracker = new ConnectionTracker();
  const handler = new RequestHandler({ app, tracker, log, requests, onCount: () => {} });
  const s = corralServer({ keepAliveTimeoutMs: 5000, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxHeaderSize: 16384 },
    { handler, tracker, requests, batch, longLived: new Recording(events) });
  if (upgrade) serveUpgrades(s, upgrade, log);
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  const records = (): Array<{ status: number; url: string; request_id: string }> => writes.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as never);
  return { s, port, events, errors, records };
}

function client(port: number): RawClient {
  const c = new RawClient(port);
  clients.push(c);
  return c;
}

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const upgradeHead = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Request-Id: up-1\r\ntraceparent: ${TRACEPARENT}\r\n\r\n`;

describe('the upgrade path of a worker\'s server', () => {
  test('an upgrade listener the app adds (in init) runs after corral has noted the socket', async () => {
    const { s, port, events } = await server(() => {});
    s.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      events.push(`app ${req.url}`);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    });
    const c = client(port);
    c.send(upgradeHead('/chat'));
    await c.waitFor('101 Switching Protocols');
    assert.deepEqual(events, ['corral /chat', 'app /chat']);
  });

  test('the upgrade export gets (req, socket, head), after corral has noted the socket', async () => {
    const events: string[] = [];
    const { port, events: noted } = await server(() => {}, (req, socket, head) => {
      events.push(`app ${req.url} head=${head.toString()}`);
      socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    });
    const c = client(port);
    c.send(upgradeHead('/ws') + 'early');
    await c.waitFor('101');
    assert.deepEqual(noted, ['corral /ws']);
    assert.deepEqual(events, ['app /ws head=early'], 'the bytes past the head reach the handler');
  });

  for (const how of ['throws', 'rejects'] as const) {
    test(`an upgrade export that ${how}: logged, a 500 on the raw socket, the socket closed`, async () => {
      const { port, errors } = await server(() => {}, how === 'throws'
        ? () => { throw new Error('no socket for you'); }
        : async () => { throw new Error('no socket for you'); });
      const c = client(port);
      c.send(upgradeHead('/ws'));
      await c.waitClosed();
      assert.match(c.got, /^HTTP\/1\.1 500 Internal Server Error\r\n[^]*\r\n\r\nInternal Server Error\n$/);
      await until(() => errors.some((l) => l.includes('upgrade handler failed') && l.includes('no socket for you')), 'the error line');
      const line = errors.find((l) => l.includes('upgrade handler failed'))!;
      assert.match(line, /"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"/, 'the request\'s trace');
    });
  }

  test('a handler that fails after writing on the socket: the socket is cut, nothing more written', async () => {
    const { port } = await server(() => {}, (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\n\r\n');
      throw new Error('too late');
    });
    const c = client(port);
    c.send(upgradeHead('/ws'));
    await c.waitClosed();
    assert.equal(c.got, 'HTTP/1.1 101 Switching Protocols\r\n\r\n');
  });

  test('without any upgrade listener, an Upgrade request goes to the request handler', async () => {
    const { port, events, records } = await server((_req, res) => res.end('as a request'));
    const c = client(port);
    c.send(upgradeHead('/plain'));
    await c.waitFor('as a request');
    assert.match(c.got, /^HTTP\/1\.1 200 /);
    assert.deepEqual(events, [], 'not an upgraded socket');
    await until(() => records().length === 1, 'its access record');
    assert.equal(records()[0]!.status, 200);
  });

  test('a request a library answers after replacing the request listeners (engine.io) is still begun (its id echoed) and logged', async () => {
    const { s, port, records } = await server((_req, res) => res.end('from the app'));
    // What engine.io's attach does: keep the listeners, answer its own path, call them for the rest.
    const before = s.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
    s.removeAllListeners('request');
    s.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.url!.startsWith('/engine/')) res.end('from the library');
      else for (const l of before) l.call(s, req, res);
    });
    const c = client(port);
    c.send('GET /engine/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: lib-1\r\n\r\nGET /other HTTP/1.1\r\nHost: x\r\nX-Request-Id: app-1\r\n\r\n');
    await c.waitFor('from the app');
    assert.match(c.got, /x-request-id: lib-1\r\n[^]*from the library/, 'the library\'s response carries corral\'s request id');
    await until(() => records().length === 2, 'two access records');
    assert.deepEqual(records().map((r) => [r.url, r.status, r.request_id]), [['/engine/x', 200, 'lib-1'], ['/other', 200, 'app-1']]);
  });
});

describe('fetch apps\' second argument', () => {
  test('fetch(request, { incoming, outgoing }): the Node request and response; an answer sent through outgoing is not written again', async () => {
    const seen: string[] = [];
    const { port, records, errors } = await server(fetchHandler((request, env) => {
      seen.push(`${request.url} ${env.incoming.url} ${env.incoming.socket.remoteAddress}`);
      if (request.url.endsWith('/node')) {
        env.outgoing.writeHead(202, { 'content-type': 'text/plain' });
        env.outgoing.end('through outgoing');
        return new Response(null, { headers: { 'x-hono-already-sent': 'true' } });
      }
      return new Response('through the Response');
    }));
    const c = client(port);
    c.send('GET /web HTTP/1.1\r\nHost: x\r\n\r\nGET /node HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor('through outgoing');
    assert.deepEqual(seen, ['http://x/web /web 127.0.0.1', 'http://x/node /node 127.0.0.1']);
    await until(() => records().length === 2, 'two access records');
    assert.deepEqual(Object.fromEntries(records().map((r) => [r.url, r.status])), { '/web': 200, '/node': 202 });
    await new Promise((r) => setTimeout(r, 50));
    assert.match(c.got, /^HTTP\/1\.1 200 [^]*through the Response[^]*HTTP\/1\.1 202 [^]*through outgoing\r\n0\r\n\r\n$/);
    assert.equal(c.closed, false, 'the connection is kept: nothing was written after the end');
    assert.deepEqual(errors, []);
  });
});
