import assert from 'node:assert/strict';
import { ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { createGzip } from 'node:zlib';
import { PathServer, RawClient, type App } from '../helpers/request-path.js';

const servers: PathServer[] = [];
const clients: RawClient[] = [];
after(() => {
  clients.forEach((c) => c.destroy());
  servers.forEach((s) => s.close());
});

async function serve(app: App): Promise<PathServer> {
  const s = await new PathServer(app).listen();
  servers.push(s);
  return s;
}

/** Sends one request and waits for the access record it makes. */
async function one(s: PathServer, request: string, reply: string) {
  const c = new RawClient(s.port);
  clients.push(c);
  await c.connected();
  c.send(request);
  await c.waitFor(reply);
  const recs = await s.waitRecords(1);
  return { c, recs };
}

describe('the end hook', () => {
  test('one line per response, with the body bytes written by write and end', async () => {
    const s = await serve((_req, res) => {
      res.write('abc');
      res.write(Buffer.from('de'));
      res.end('fgh\u00e9');
    });
    const { recs } = await one(s, 'GET /w HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'fgh');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.records().length, 1, 'built once');
    assert.equal(recs[0]!.bytes, 10, 'utf-8 bytes of the body, not characters, no headers');
    assert.equal(recs[0]!.url, '/w');
  });

  test('HEAD and 204 count no body bytes', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/204') res.statusCode = 204;
      res.end('ignored');
    });
    await one(s, 'HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '\r\n\r\n');
    const { recs } = await (async () => {
      const c = new RawClient(s.port);
      clients.push(c);
      await c.connected();
      c.send('GET /204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await c.waitFor('\r\n\r\n');
      return { recs: await s.waitRecords(2) };
    })();
    assert.deepEqual(recs.map((r) => [r.status, r.bytes]), [[200, 0], [204, 0]]);
  });

  test('a response whose prototype the app replaces (Express) is still counted and logged once', async () => {
    const proto = Object.create(ServerResponse.prototype, {
      sendText: { value(this: ServerResponse, t: string) { this.end(t); } },
    }) as object;
    const s = await serve((_req, res) => {
      Object.setPrototypeOf(res, proto);
      res.write('12345');
      (res as unknown as { sendText(t: string): void }).sendText('678');
    });
    const { recs } = await one(s, 'GET /swap HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '678');
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.bytes, 8);
    assert.match(recs[0]!.request_id, /-/);
  });

  test('a wrapper that replaces res.write/res.end (compression) counts the bytes sent', async () => {
    const s = await serve((_req, res) => {
      // The methods the wrapper found, called as compression calls them.
      const write = res.write as (this: ServerResponse, chunk?: unknown) => boolean;
      const end = res.end as (this: ServerResponse) => void;
      const gz = createGzip();
      gz.on('data', (chunk: Buffer) => write.call(res, chunk));
      gz.on('end', () => end.call(res));
      res.setHeader('content-encoding', 'gzip');
      res.write = ((c: string) => gz.write(c)) as unknown as typeof res.write;
      res.end = ((c: string) => gz.end(c)) as unknown as typeof res.end;
      res.end('hello hello hello');
    });
    const { c, recs } = await one(s, 'GET /gz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '\r\n0\r\n\r\n');
    assert.equal(recs.length, 1);
    // The chunked body as sent: the compressed bytes, framing aside.
    const body = c.got.slice(c.got.indexOf('\r\n\r\n') + 4);
    let sent = 0;
    for (let at = 0; ;) {
      const nl = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, nl), 16);
      if (!size) break;
      sent += size;
      at = nl + 2 + size + 2;
    }
    assert.equal(recs[0]!.bytes, sent, 'the compressed bytes sent');
  });

  test('request listeners rewrapped by the app (Socket.IO style) still log through the hook', async () => {
    const s = await serve((_req, res) => res.end('inner'));
    const listeners = s.server.listeners('request') as Array<(...a: unknown[]) => void>;
    s.server.removeAllListeners('request');
    s.server.on('request', (req, res) => {
      for (const l of listeners) l.call(s.server, req, res);
    });
    const { recs } = await one(s, 'GET /io HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'inner');
    assert.deepEqual(recs.map((r) => [r.url, r.status, r.bytes]), [['/io', 200, 5]]);
  });

  test('the responses of a server the app creates itself are not logged', async () => {
    const { createServer } = await import('node:http');
    const own = createServer((_req, res) => res.end('own'));
    await new Promise<void>((r) => own.listen(0, '127.0.0.1', r));
    const s = await serve((_req, res) => res.end('corral'));
    const c = new RawClient((own.address() as { port: number }).port);
    clients.push(c);
    await c.connected();
    c.send('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await c.waitFor('own');
    await new Promise((r) => setTimeout(r, 50));
    own.close();
    assert.equal(s.records().length, 0);
  });
});
