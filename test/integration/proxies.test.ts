import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

async function serving(extra: string[]): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log-format', 'json', ...extra, app('echo-headers.mjs')]);
  started.push(c);
  await c.waitReady();
  return { c, port };
}

interface Seen {
  headers: Record<string, string>;
  rawHeaders: string[];
}

/** One request from `from` (a loopback address) with these headers; the app's view of them. */
function send(port: number, id: string, headers: Record<string, string>, from = '127.0.0.1'): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', localAddress: from, agent: false, headers: { 'x-request-id': id, ...headers }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(JSON.parse(body) as Seen));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/** The access line of request `id`, parsed. */
async function lineOf(c: Corral, id: string): Promise<Record<string, unknown>> {
  const line = await c.waitForLine(new RegExp(`"request_id":"${id}"`), 10_000);
  return JSON.parse(line) as Record<string, unknown>;
}

const CHAIN = { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' };

describe('the client address behind trusted proxies, through the CLI', () => {
  test('from 127.0.0.1 (trusted by default): the client is the first untrusted hop, the peer is logged apart', async () => {
    const { c, port } = await serving([]);
    const seen = await send(port, 'px-1', CHAIN);
    const rec = await lineOf(c, 'px-1');
    assert.equal(rec.remote_addr, '203.0.113.7');
    assert.equal(rec.peer_addr, '127.0.0.1');
    assert.equal(rec.forwarded_for, '6.6.6.6, 203.0.113.7');
    // A trusted proxy's headers reach the app.
    assert.equal(seen.headers['x-forwarded-for'], '6.6.6.6, 203.0.113.7');
    // Without forwarding headers the line has no peer_addr.
    await send(port, 'px-2', {});
    const plain = await lineOf(c, 'px-2');
    assert.equal(plain.remote_addr, '127.0.0.1');
    assert.ok(!('peer_addr' in plain));
  });

  test('trusting nobody: the peer is the client', async () => {
    const { c, port } = await serving(['--forwarded-allow-ips', 'none', '--forwarded-headers', 'keep']);
    const seen = await send(port, 'px-3', CHAIN);
    const rec = await lineOf(c, 'px-3');
    assert.equal(rec.remote_addr, '127.0.0.1');
    assert.ok(!('peer_addr' in rec));
    assert.equal(seen.headers['x-forwarded-for'], '6.6.6.6, 203.0.113.7', 'keep passes them on');
  });

  test('a direct client forging the headers from an untrusted address: its own address is logged, the app never sees them', async () => {
    const { c, port } = await serving(['--forwarded-allow-ips', '127.0.0.1/32']);
    const forged = { ...CHAIN, forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', 'x-forwarded-proto': 'https' };
    const seen = await send(port, 'px-4', forged, '127.0.0.2');
    const rec = await lineOf(c, 'px-4');
    assert.equal(rec.remote_addr, '127.0.0.2');
    assert.ok(!('peer_addr' in rec));
    // The log keeps what was sent, for forensics.
    assert.equal(rec.forwarded_for, '6.6.6.6, 203.0.113.7');
    for (const h of ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-proto']) {
      assert.equal(seen.headers[h], undefined, `${h} is dropped from req.headers`);
      assert.ok(!seen.rawHeaders.some((n) => n.toLowerCase() === h), `${h} is dropped from req.rawHeaders`);
    }
    assert.equal(seen.headers['x-request-id'], 'px-4', 'other headers are untouched');
    // The trusted proxy's requests are not affected.
    const fromProxy = await send(port, 'px-5', CHAIN, '127.0.0.1');
    assert.equal(fromProxy.headers['x-forwarded-for'], '6.6.6.6, 203.0.113.7');
    assert.equal((await lineOf(c, 'px-5')).remote_addr, '203.0.113.7');
  });
});
