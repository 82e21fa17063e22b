import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

// Long-lived connections under load, through the real CLI: 500 WebSocket clients sending a
// message every half second and 50 Server-Sent Event streams on two workers, then a reload
// (HUP), a stop (QUIT) or a max-requests recycle. Every connection the drain ends must end
// politely (a close frame with the configured code, a clean end of the stream body), at
// moments spread as configured, and each WebSocket gets an access line with its close code.
// The clients are bench/lib/ws-load.mjs, the app bench/apps/ws-echo.mjs (the bench's own).

const WS = 500;
const SSE = 50;
const SPREAD_S = 2;
const ECHO_APP = join(ROOT, 'bench', 'apps', 'ws-echo.mjs');

/** What bench/lib/ws-load.mjs summarizes (the fields used here). */
interface Summary {
  initialFailed: number;
  closes: number;
  wsCloseCodes: Record<string, number>;
  sseEnded: number;
  sseResets: number;
  failedHandshakes: number;
  failures: Record<string, number>;
  reconnects: number;
  peakClosesPerWindow: number;
  peakReconnectsPerWindow: number;
  closeSpreadMs: number | null;
  echoes: number;
  echoMismatches: number;
}

interface Client {
  kind: 'ws' | 'sse';
  id: number;
  server: string | null;
  open: boolean;
}

interface Load {
  clients: Client[];
  open(): Promise<Load>;
  servers(): Set<string | null>;
  waitUntil(pred: () => boolean, timeoutMs: number, what?: string): Promise<number>;
  waitMovedFrom(old: Set<string | null>, timeoutMs: number): Promise<number>;
  waitCloses(n: number, timeoutMs: number): Promise<number>;
  summary(opts?: { since?: number; windowMs?: number }): Summary;
  stop(): Promise<void>;
}

type LoadOptions = { url: string; ws: number; sse: number; intervalMs: number; reconnect: boolean; serverHeader: string; deadlineMs: number };
let LongLivedLoad: new (opts: LoadOptions) => Load;

const started: Corral[] = [];
const loads: Load[] = [];
const dirs: string[] = [];
before(async () => {
  ({ LongLivedLoad } = await import(pathToFileURL(join(ROOT, 'bench', 'lib', 'ws-load.mjs')).href));
});
after(async () => {
  await Promise.all(loads.map((l) => l.stop()));
  started.forEach((c) => c.kill());
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serveEcho(extra: string[]): Promise<{ c: Corral; url: string; accessLog: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'corral-long-lived-'));
  dirs.push(dir);
  const accessLog = join(dir, 'access.log');
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', accessLog, '--access-log-format', 'json', ...extra, ECHO_APP]);
  started.push(c);
  await c.waitReady();
  return { c, url: `http://127.0.0.1:${port}/`, accessLog };
}

/** 500 WebSockets and 50 streams, all open and echoing. */
async function openLoad(url: string, reconnect: boolean): Promise<Load> {
  const load = new LongLivedLoad({ url, ws: WS, sse: SSE, intervalMs: 500, reconnect, serverHeader: 'x-served-by', deadlineMs: 50_000 });
  loads.push(load);
  await load.open();
  assert.equal(load.summary().initialFailed, 0, `clients failed to connect: ${JSON.stringify(load.summary().failures)}`);
  await sleep(600); // every client has sent and had a message echoed
  return load;
}

interface AccessLine {
  status: number;
  url: string;
  ws_close?: number;
}

/** The WebSocket access lines (status 101), by client (the ?client= of their URL). */
function wsLines(file: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line) as AccessLine;
    if (r.status !== 101) continue;
    const client = new URL(r.url, 'http://x').searchParams.get('client') ?? '?';
    out.set(client, [...(out.get(client) ?? []), r.ws_close ?? -1]);
  }
  return out;
}

/** Every WebSocket client has exactly the access lines `expected(client)` gives, in close codes. */
function assertAccess(file: string, expected: (id: number) => number[]): void {
  const lines = wsLines(file);
  const wrong: string[] = [];
  for (let id = 0; id < WS; id++) {
    const got = (lines.get(`ws${id}`) ?? []).sort();
    const want = expected(id).sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`ws${id}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
  const strangers = [...lines.keys()].filter((k) => !/^ws\d+$/.test(k));
  assert.deepEqual(strangers, [], 'access lines of no client');
  assert.equal(wrong.length, 0, `${wrong.length} WebSocket clients with wrong access lines, e.g. ${wrong.slice(0, 5).join('; ')}`);
}

/** The polite end of every connection the drain ended: close code, clean stream ends, nothing cut. */
function assertPolite(s: Summary, ws: number, sse: number, code: number): void {
  assert.deepEqual(s.wsCloseCodes, ws ? { [code]: ws } : {}, 'every WebSocket closed with the configured code (none 1006)');
  assert.equal(s.sseResets, 0, 'no stream reset');
  assert.equal(s.sseEnded, sse, 'every stream ended cleanly');
  assert.equal(s.echoMismatches, 0, 'every echo came back in order');
}

/** Closes at random moments over the spread window: far apart, never a stampede. */
function assertSpread(s: Summary, closes: number): void {
  assert.ok((s.closeSpreadMs ?? 0) > 1000, `first to last close ${s.closeSpreadMs} ms with close-spread ${SPREAD_S} s`);
  assert.ok(s.peakClosesPerWindow < closes / 3, `${s.peakClosesPerWindow} of ${closes} closes in one 100 ms`);
}

/** With no spread the closes come together: most of them within one short burst. */
function assertTogether(s: Summary, closes: number): void {
  assert.ok((s.closeSpreadMs ?? Infinity) < 1000, `first to last close ${s.closeSpreadMs} ms with close-spread 0`);
  assert.ok(s.peakClosesPerWindow >= closes / 4, `only ${s.peakClosesPerWindow} of ${closes} closes in the busiest 100 ms`);
}

describe('long-lived connections under load: 500 WebSockets and 50 SSE streams on 2 workers', () => {
  test(`HUP: every connection ended politely with 1012 over --close-spread ${SPREAD_S}, every client back on the new generation`, { timeout: 60_000 }, async () => {
    const { c, url, accessLog } = await serveEcho(['--close-spread', String(SPREAD_S)]);
    const load = await openLoad(url, true);
    const old = load.servers();
    const hup = performance.now();
    c.signal('SIGHUP');
    const moved = await load.waitMovedFrom(old, 15_000);
    const s = load.summary({ since: hup });
    console.log(`HUP: ${JSON.stringify({ ...s, movedMs: Math.round(moved - hup) })}`);
    assertPolite(s, WS, SSE, 1012);
    assert.equal(s.failedHandshakes, 0, `failed handshakes: ${JSON.stringify(s.failures)}`);
    assert.equal(s.reconnects, WS + SSE, 'every client reconnected once');
    assertSpread(s, WS + SSE);
    const now = new Set((await c.workerPids()).map(String));
    assert.ok([...load.servers()].every((pid) => pid !== null && now.has(pid)), 'every client is on a current worker');
    await load.stop();
    c.signal('SIGTERM');
    assert.equal((await c.waitExit()).code, 0);
    // One line per connection: the one the reload ended (1012), its successor the client closed (1000).
    assertAccess(accessLog, () => [1000, 1012]);
  });

  test('QUIT with --close-spread 0: every connection ended politely with 1001, all together', { timeout: 60_000 }, async () => {
    const { c, url, accessLog } = await serveEcho(['--close-spread', '0']);
    const load = await openLoad(url, false);
    const quit = performance.now();
    c.signal('SIGQUIT');
    await load.waitCloses(WS + SSE, 10_000);
    const s = load.summary({ since: quit });
    console.log(`QUIT: ${JSON.stringify(s)}`);
    assertPolite(s, WS, SSE, 1001);
    assertTogether(s, WS + SSE);
    assert.equal((await c.waitExit()).code, 0);
    assertAccess(accessLog, () => [1001]);
  });

  test('a max-requests recycle: the recycled worker\'s connections end politely with 1012, spread, and come back on other workers', { timeout: 60_000 }, async () => {
    const M = 600;
    const { c, url, accessLog } = await serveEcho(['--close-spread', String(SPREAD_S), '--max-requests', String(M), '--keep-alive-balance', 'false']);
    const load = await openLoad(url, true);
    // The worker serving more clients is taken to its max-requests by plain requests on one
    // kept connection to it (keep-alive balancing off, so the connection stays there). The
    // other worker never gets there: it has fewer clients than max-requests, and every
    // client that moves to it was one of the recycled worker's.
    const byServer = new Map<string, Client[]>();
    for (const cl of load.clients) byServer.set(cl.server!, [...(byServer.get(cl.server!) ?? []), cl]);
    const [target, mine] = [...byServer].sort((a, b) => b[1].length - a[1].length)[0]!;
    let agent: Agent | undefined;
    for (let i = 0; i < 50 && !agent; i++) {
      const a = new Agent({ keepAlive: true, maxSockets: 1 });
      if ((await plainGet(url, a)) === target) agent = a;
      else a.destroy();
    }
    assert.ok(agent, `no kept connection reached worker ${target} in 50 tries`);
    // Every long-lived connection counts as a request (an upgrade as well as a stream), and
    // so did the plain request that found the kept connection: the recycle is due at plain
    // request number M - mine.length.
    const due = M - mine.length;
    const since = performance.now();
    for (let n = 2; n < due; n++) {
      assert.equal(await plainGet(url, agent), target, `plain request ${n} answered by the worker it was kept on`);
    }
    const asks = new RegExp(`worker ${target} .*asks to be replaced \\(max-requests\\)`);
    await sleep(300);
    assert.equal(c.lines.find((l) => asks.test(l)), undefined, `worker ${target} recycled before its request number ${M}`);
    assert.equal(load.summary({ since }).closes, 0, 'nothing ended before the recycle');
    await plainGet(url, agent);
    await c.waitForLine(asks, 5000);
    agent.destroy();
    const moved = await load.waitUntil(() => load.clients.every((cl) => cl.open && cl.server !== target), 15_000, 'every client off the recycled worker');
    const s = load.summary({ since });
    const ws = mine.filter((cl) => cl.kind === 'ws');
    console.log(`recycle: ${JSON.stringify({ ...s, onRecycled: mine.length, movedMs: Math.round(moved - since) })}`);
    assertPolite(s, ws.length, mine.length - ws.length, 1012);
    assert.equal(s.failedHandshakes, 0, `failed handshakes: ${JSON.stringify(s.failures)}`);
    assert.equal(s.reconnects, mine.length, 'every client of the recycled worker reconnected once, nobody else');
    assertSpread(s, mine.length);
    await load.stop();
    c.signal('SIGTERM');
    assert.equal((await c.waitExit()).code, 0);
    const recycled = new Set(ws.map((cl) => cl.id));
    assertAccess(accessLog, (id) => (recycled.has(id) ? [1000, 1012] : [1000]));
  });
});

function plainGet(url: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers['x-served-by'])));
    }).on('error', reject);
  });
}
