import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { cleanEnv, Corral } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { FIXTURES, ROOT, app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const INSTRUMENTATION = resolve(FIXTURES, 'otel/instrumentation.mjs');
const started: Array<{ kill(): void }> = [];
after(() => started.forEach((p) => p.kill()));

const tmp = () => mkdtempSync(join(tmpdir(), 'corral-tracing-'));
const tp = (trace: string, parent: string) => `00-${trace}-${parent}-01`;

/** What the tests send: three requests continuing a trace, one starting none. */
const REQUESTS = [
  { path: '/a', trace: 'a1'.repeat(16), parent: 'b1'.repeat(8) },
  { path: '/missing', trace: 'a2'.repeat(16), parent: 'b2'.repeat(8) },
  { path: '/boom', trace: 'a3'.repeat(16), parent: 'b3'.repeat(8) },
  { path: '/plain', trace: undefined, parent: undefined },
];

interface Span {
  name: string;
  kind: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  pid: number;
}

async function sendAll(port: number): Promise<void> {
  for (const r of REQUESTS) {
    const headers: Record<string, string> = r.trace ? { traceparent: tp(r.trace, r.parent!) } : {};
    await get({ port, path: r.path, headers });
  }
}

/** The spans in the file once there are `n` (SimpleSpanProcessor writes each as its response ends). */
async function spansOf(file: string, n: number): Promise<{ spans: Span[]; loaded: number[] }> {
  const end = Date.now() + 15_000;
  for (;;) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Span & { loaded?: number }) : [];
    const spans = lines.filter((l) => l.loaded === undefined);
    if (spans.length >= n || Date.now() > end) return { spans, loaded: lines.flatMap((l) => (l.loaded === undefined ? [] : [l.loaded])) };
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A span as both runs should agree on: what varies by run (ports, ids made fresh) set apart. */
function comparable(s: Span, port: number): Record<string, unknown> {
  const { 'server.port': serverPort, 'network.peer.port': peerPort, ...attributes } = s.attributes;
  assert.equal(serverPort, port, 'server.port is the port the request came to');
  assert.equal(typeof peerPort, 'number');
  const sent = REQUESTS.find((r) => r.path === attributes['url.path']);
  assert.ok(sent, `a span for a request sent: ${JSON.stringify(s)}`);
  return { name: s.name, kind: s.kind, traceId: sent.trace ? s.traceId : 'new', parentSpanId: s.parentSpanId, attributes };
}

/** `node --import instrumentation.mjs traced.mjs`: the app traced on its own. */
async function standalone(spansFile: string): Promise<{ spans: Span[]; port: number }> {
  const port = await freePort();
  const proc: ChildProcess = spawn(process.execPath, ['--import', INSTRUMENTATION, app('traced.mjs')], {
    cwd: ROOT, env: { ...cleanEnv(), TRACED_PORT: String(port), SPANS_FILE: spansFile }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  started.push({ kill: () => proc.kill('SIGKILL') });
  await new Promise<void>((ok, fail) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => l === 'listening' && ok());
    proc.once('exit', (code) => fail(new Error(`the app exited (${code}) before listening`)));
  });
  await sendAll(port);
  const { spans } = await spansOf(spansFile, REQUESTS.length);
  proc.kill('SIGKILL');
  return { spans, port };
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string };
}
interface OtlpSpan {
  traceId: string;
  parentSpanId?: string;
  kind: number;
  attributes: OtlpAttribute[];
}
interface OtlpBody {
  resourceSpans: Array<{ resource: { attributes: OtlpAttribute[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
}

const attr = (list: OtlpAttribute[], key: string) => list.find((a) => a.key === key)?.value.stringValue;

/** A stand-in for an OpenTelemetry collector: OTLP/HTTP with JSON bodies on /v1/traces, kept as they come. */
async function otlpCollector(): Promise<{ collector: Server; bodies: OtlpBody[] }> {
  const bodies: OtlpBody[] = [];
  const collector = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') bodies.push(JSON.parse(text) as OtlpBody);
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((ok) => collector.listen(0, '127.0.0.1', ok));
  return { collector, bodies };
}

describe('tracing', () => {
  test('an app traced with OpenTelemetry records the same server spans under corral (worker-node-options) as under node, one per request, parented by the client\'s traceparent', async () => {
    const dir = tmp();
    const alone = await standalone(join(dir, 'alone.jsonl'));

    const port = await freePort();
    const spansFile = join(dir, 'corral.jsonl');
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--worker-node-options', `--import "${INSTRUMENTATION}"`, app('traced.mjs')], { env: { SPANS_FILE: spansFile } });
    started.push(c);
    await c.waitReady();
    await sendAll(port);
    const under = await spansOf(spansFile, REQUESTS.length);
    const workers = await c.workerPids();
    c.signal('SIGQUIT');
    await c.waitExit();

    assert.equal(alone.spans.length, REQUESTS.length, `one span per request on its own: ${JSON.stringify(alone.spans)}`);
    assert.equal(under.spans.length, REQUESTS.length, `one span per request under corral: ${JSON.stringify(under.spans)}\n${c.output}`);
    const byPath = (a: Record<string, unknown>, b: Record<string, unknown>) => String((a.attributes as Record<string, unknown>)['url.path']).localeCompare(String((b.attributes as Record<string, unknown>)['url.path']));
    const expected = alone.spans.map((s) => comparable(s, alone.port)).sort(byPath);
    const got = under.spans.map((s) => comparable(s, port)).sort(byPath);
    assert.deepEqual(got, expected);

    for (const s of under.spans) {
      assert.equal(s.kind, 'SERVER');
      assert.equal(s.attributes['http.request.method'], 'GET');
      const sent = REQUESTS.find((r) => r.path === s.attributes['url.path'])!;
      assert.equal(s.attributes['http.response.status_code'], { '/missing': 404, '/boom': 500 }[sent.path] ?? 200);
      assert.equal(s.traceId === sent.trace, sent.trace !== undefined, 'the trace the client sent is continued');
      assert.equal(s.parentSpanId, sent.parent, 'the client\'s span is the parent');
      assert.ok(workers.includes(s.pid), 'recorded in a worker');
    }
    // Loaded by each worker before it served, never by the master.
    assert.deepEqual([...under.loaded].sort(), [...workers].sort());
    assert.ok(!under.loaded.includes(c.pid));

    // The access lines name the same trace, and the client's span as the span the server's span is a child of.
    const access = c.lines.filter((l) => l.includes('"request_id"') && !l.includes('"level"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(access.length, REQUESTS.length);
    for (const line of access) {
      const span = under.spans.find((s) => s.attributes['url.path'] === line.url)!;
      if (span.parentSpanId === undefined) {
        assert.equal(line.trace_id, undefined);
        assert.equal(line.span_id, undefined);
      } else {
        assert.equal(line.trace_id, span.traceId);
        assert.equal(line.span_id, span.parentSpanId);
      }
    }
  });

  test('spans a worker batched are flushed by the app\'s close export as it stops: none lost at a stop', async () => {
    const port = await freePort();
    const spansFile = join(tmp(), 'batched.jsonl');
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--worker-node-options', `--import=${INSTRUMENTATION}`, app('traced-flush.mjs')], { env: { SPANS_FILE: spansFile, SPANS_BATCH: '1' } });
    started.push(c);
    await c.waitReady();
    await sendAll(port);
    const before = await spansOf(spansFile, 0);
    assert.equal(before.spans.length, 0, 'batched, not yet written');
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    const { spans } = await spansOf(spansFile, REQUESTS.length);
    assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), REQUESTS.map((r) => r.path).sort(), c.output);
  });

  test('to an OTLP collector as docs/tracing.md sets it up: every span arrives, under the service name, in the client\'s trace', async () => {
    const { collector, bodies } = await otlpCollector();
    started.push({ kill: () => collector.close() });
    const port = await freePort();
    const env = { OTEL_SERVICE_NAME: 'shop', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}` };
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--worker-node-options', `--import ${resolve(FIXTURES, 'otel/otlp.mjs')}`, app('traced-otlp.mjs')], { env });
    started.push(c);
    await c.waitReady();
    await sendAll(port);
    const workers = await c.workerPids();
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    collector.close();

    const spans = bodies.flatMap((b) => b.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({
      span, service: attr(rs.resource.attributes, 'service.name'), pid: Number(rs.resource.attributes.find((a) => a.key === 'process.pid')?.value.intValue),
    })))));
    assert.equal(spans.length, REQUESTS.length, `one span per request, none of the exporter's own requests: ${JSON.stringify(bodies)}`);
    const access = c.lines.filter((l) => l.includes('"request_id"') && !l.includes('"level"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const sent of REQUESTS) {
      const got = spans.filter((s) => attr(s.span.attributes, 'url.path') === sent.path);
      assert.equal(got.length, 1, sent.path);
      const { span, service, pid } = got[0]!;
      assert.equal(service, 'shop');
      assert.ok(workers.includes(pid), `exported by a worker (${pid}), not the master`);
      assert.equal(span.kind, 2, 'SPAN_KIND_SERVER');
      const line = access.find((l) => l.url === sent.path)!;
      if (sent.trace) {
        assert.equal(span.traceId, sent.trace);
        assert.equal(span.parentSpanId, sent.parent);
        assert.equal(line.trace_id, span.traceId);
        assert.equal(line.span_id, span.parentSpanId);
      } else {
        assert.ok(!span.parentSpanId, 'a new trace');
        assert.equal(line.trace_id, undefined);
      }
    }
  });

  test('trace ids in the access line and in the error-log lines of a request; an invalid traceparent is never logged', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--slow-request-threshold', '0.01', '--access-log-format', '{url} {status} {trace_id} {span_id}', app('traced.mjs')]);
    started.push(c);
    await c.waitReady();
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const parent = 'b7ad6b7169203331';
    const invalid = `00-${trace.toUpperCase()}-${parent}-01`;
    assert.equal((await get({ port, path: '/boom', headers: { traceparent: tp(trace, parent) } })).status, 500);
    assert.equal((await get({ port, path: '/slow', headers: { traceparent: tp(trace, parent), 'x-request-id': 'slow-1' } })).status, 200);
    assert.equal((await get({ port, path: '/boom', headers: { traceparent: invalid, 'x-request-id': 'bad-1' } })).status, 500);
    c.signal('SIGQUIT');
    await c.waitExit();

    assert.ok(c.lines.includes(`/boom 500 ${trace} ${parent}`), c.output);
    assert.ok(c.lines.includes(`/slow 200 ${trace} ${parent}`), c.output);
    assert.ok(c.lines.includes('/boom 500 - -'), c.output);
    const errors = c.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const failed = errors.filter((e) => e.msg === 'request handler failed');
    assert.equal(failed.length, 2, c.output);
    assert.equal(failed[0]!.trace_id, trace);
    assert.equal(failed[0]!.span_id, parent);
    assert.equal(typeof failed[0]!.request_id, 'string');
    assert.equal(failed[1]!.request_id, 'bad-1');
    assert.ok(!('trace_id' in failed[1]!) && !('span_id' in failed[1]!));
    const slow = errors.find((e) => String(e.msg).startsWith('slow request: GET /slow'));
    assert.ok(slow, c.output);
    assert.equal(slow.trace_id, trace);
    assert.equal(slow.span_id, parent);
    assert.equal(slow.request_id, 'slow-1');
    assert.ok(!c.output.includes(trace.toUpperCase()), 'the invalid header is not echoed');
  });
});
