import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

interface Received {
  status: number;
  /** Body bytes as they came off the wire (no decompression). */
  bytes: number;
  headers: Record<string, string | string[] | undefined>;
}

/** One request on a fresh connection; counts the body bytes the client read. */
function fetchRaw(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Received> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: false, headers: opts.headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function serve(fixture: string): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', app(fixture)]);
  started.push(c);
  await c.waitReady();
  return { c, port };
}

async function lineOf(c: Corral, id: string): Promise<Record<string, unknown>> {
  return JSON.parse(await c.waitForLine(new RegExp(`"request_id":"${id}"`))) as Record<string, unknown>;
}

interface Case {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** The status the app answers with (checked against what the client got, too). */
  status: number;
  /** Whether a non-empty body is expected (guards against a route that answers nothing). */
  expect?: 'body' | 'no body';
}

const COMMON: Case[] = [
  { path: '/small', status: 200, expect: 'body' },
  { path: '/stream', status: 200, expect: 'body' },
  { path: '/empty', status: 200 },
  { method: 'HEAD', path: '/small', status: 200, expect: 'no body' },
];
const NO_CONTENT: Case = { path: '/nocontent', status: 204, expect: 'no body' };

const APPS: Array<{ name: string; fixture: string; cases: Case[]; rewrites: boolean }> = [
  { name: 'Express 5', fixture: 'express-routes.mjs', cases: [...COMMON, NO_CONTENT], rewrites: true },
  {
    name: 'an Express app shaped like NestJS\'s ExpressAdapter', fixture: 'nest-shaped.mjs', rewrites: true,
    cases: [...COMMON, NO_CONTENT, { method: 'POST', path: '/items', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}', status: 201, expect: 'body' }],
  },
  { name: 'Koa', fixture: 'koa-routes.mjs', cases: [...COMMON, NO_CONTENT], rewrites: true },
  { name: 'Fastify', fixture: 'fastify-routes.mjs', cases: [...COMMON, NO_CONTENT], rewrites: true },
  { name: 'Hono', fixture: 'hono-routes.mjs', cases: [...COMMON, NO_CONTENT], rewrites: false },
  { name: 'a handler that replaces the response\'s prototype', fixture: 'proto-swap.mjs', cases: [...COMMON, NO_CONTENT], rewrites: true },
  {
    name: 'a handler wrapping res.write/res.end as own properties (gzip) or calling ServerResponse.prototype directly', fixture: 'wrapped-write.mjs', rewrites: true,
    cases: [...COMMON, { path: '/direct/small', status: 200, expect: 'body' }, { path: '/direct/stream', status: 200, expect: 'body' }, { path: '/direct/empty', status: 200 }],
  },
];

describe('access lines of real frameworks', () => {
  for (const a of APPS) {
    test(`${a.name}: status and bytes are what the client received${a.rewrites ? '; headers as the client sent them' : ''}`, async () => {
      const { c, port } = await serve(a.fixture);
      let n = 0;
      for (const k of a.cases) {
        const id = `fw-${++n}`;
        const got = await fetchRaw(port, k.path, { method: k.method, body: k.body, headers: { ...k.headers, 'x-request-id': id } });
        const what = `${k.method ?? 'GET'} ${k.path}`;
        assert.equal(got.status, k.status, `${what}: status the client got`);
        if (k.expect === 'body') assert.ok(got.bytes > 0, `${what}: a body`);
        if (k.expect === 'no body') assert.equal(got.bytes, 0, `${what}: no body`);
        const line = await lineOf(c, id);
        assert.equal(line.status, got.status, `${what}: logged status`);
        assert.equal(line.bytes, got.bytes, `${what}: logged bytes equal the body bytes the client read`);
        assert.equal(line.method, k.method ?? 'GET');
        assert.equal(line.url, k.path);
        assert.equal(typeof line.duration_ms, 'number');
        assert.ok((line.duration_ms as number) >= 0 && (line.duration_ms as number) < 10_000, `${what}: duration ${String(line.duration_ms)}`);
      }
      if (a.rewrites) {
        const got = await fetchRaw(port, '/rewrite', { headers: { 'x-request-id': 'fw-rewrite', 'x-forwarded-for': '203.0.113.7', 'user-agent': 'client-ua/1' } });
        assert.equal(got.status, 200);
        const line = await lineOf(c, 'fw-rewrite');
        assert.equal(line.forwarded_for, '203.0.113.7', 'the client\'s X-Forwarded-For, not the app\'s rewrite');
        assert.equal(line.user_agent, 'client-ua/1');
        assert.equal(line.bytes, got.bytes);
      }
      c.signal('SIGQUIT');
      assert.equal((await c.waitExit()).code, 0);
      // One line per request, none twice.
      const ids = c.lines.filter((l) => l.includes('"request_id":"fw-')).map((l) => (JSON.parse(l) as { request_id: string }).request_id);
      assert.equal(new Set(ids).size, ids.length, 'no request logged twice');
      assert.equal(ids.length, a.cases.length + (a.rewrites ? 1 : 0));
    });
  }

  test('an HTTP server the app runs itself in the worker is left alone: its responses get no line', async () => {
    const { c, port } = await serve('own-server.mjs');
    for (let i = 0; i < 3; i++) {
      const got = await fetchRaw(port, `/own-${i}`, { headers: { 'x-request-id': `own-${i}` } });
      assert.equal(got.status, 200);
      assert.equal(got.bytes, Buffer.byteLength(`relayed: inner answer for /own-${i}`));
      const line = await lineOf(c, `own-${i}`);
      assert.equal(line.bytes, got.bytes);
    }
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    const lines = c.lines.filter((l) => l.includes('"request_id"'));
    assert.equal(lines.length, 3, `one line per request to corral, none for the app's own server:\n${lines.join('\n')}`);
  });
});
