import assert from 'node:assert/strict';
import { createServer, request, type ClientRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { Corral, runCli, serveHello } from '../helpers/corral.js';
import { get, load } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const started: Corral[] = [];
after(() => {
  for (const c of started) c.kill();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scrape(port: number): Promise<string> {
  const r = await get({ port, path: '/metrics' });
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return r.body;
}

/** Sum of a metric's samples whose labels match `filter`. */
function total(text: string, name: string, filter = ''): number {
  let n = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (filter && !line.includes(filter)) continue;
    n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

const requestCount = (text: string) => total(text, 'http_server_request_duration_seconds_count');

/** Polls /metrics until `ok(text)` (the master catches up at the workers' next heartbeat). */
async function until(port: number, ok: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < end) {
    text = await scrape(port);
    if (ok(text)) return text;
    await sleep(100);
  }
  return text;
}

async function serveWithMetrics(workers: number, extra: string[] = []): Promise<{ c: Corral; port: number; mport: number }> {
  const mport = await freePort();
  const { c, port } = await serveHello(started, workers, ['--metrics-bind', `127.0.0.1:${mport}`, ...extra]);
  return { c, port, mport };
}

/** An event stream from `path`, resolved once its first event arrived; `close` hangs up. */
function openStream(port: number, path = '/events'): Promise<{ req: ClientRequest; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      res.setEncoding('utf8');
      res.once('data', () => resolve({ req, close: () => req.destroy() }));
      res.on('error', () => {});
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no event within 10 s')));
    req.end();
  });
}

describe('metrics', () => {
  test('after a bounded load, the request count equals the requests answered; it never goes back after SIGKILL or a reload', async () => {
    const { c, port, mport } = await serveWithMetrics(2);
    const r = await load({ port, total: 600, concurrency: 8, keepAlive: true });
    assert.equal(r.failed, 0);
    let text = await until(mport, (t) => requestCount(t) >= r.ok);
    assert.equal(requestCount(text), r.ok);
    assert.match(text, /^corral_workers\{state="ready"\} 2$/m);
    assert.match(text, /^corral_worker_memory_bytes\{slot="1"\} [1-9]\d*$/m);
    assert.match(text, /^corral_worker_memory_bytes\{slot="2"\} [1-9]\d*$/m);
    assert.match(text, /^process_resident_memory_bytes \d+$/m, 'the master\'s own process metrics');
    assert.doesNotMatch(text, /pid="/);

    // SIGKILL a worker: what it reported stays counted, and its exit is a crash.
    const [victim] = await c.workerPids();
    process.kill(victim!, 'SIGKILL');
    text = await until(mport, (t) => total(t, 'corral_worker_exits_total', 'reason="crash"') === 1 && /^corral_workers\{state="ready"\} 2$/m.test(t));
    assert.equal(total(text, 'corral_worker_exits_total', 'reason="crash"'), 1, text);
    assert.equal(requestCount(text), r.ok);
    assert.equal(total(text, 'corral_worker_starts_total'), 3);

    // Reload: the old generation's totals are kept.
    const r2 = await load({ port, total: 100, concurrency: 4, keepAlive: false });
    const from = c.lines.length;
    c.signal('SIGHUP');
    await c.waitForLine(/reload #1 done/, 20_000, from);
    text = await until(mport, (t) => total(t, 'corral_worker_exits_total', 'reason="reload"') === 2 && requestCount(t) >= r.ok + r2.ok);
    assert.equal(requestCount(text), r.ok + r2.ok);
    assert.equal(total(text, 'corral_reloads_total', 'result="ok"'), 1);
    assert.equal(total(text, 'corral_generation'), 2);
    const r3 = await load({ port, total: 50, concurrency: 2, keepAlive: true });
    text = await until(mport, (t) => requestCount(t) >= r.ok + r2.ok + r3.ok);
    assert.equal(requestCount(text), r.ok + r2.ok + r3.ok);
  });

  test('/readyz is 503 before the first generation is ready and during a shutdown drain; /livez is 200 meanwhile', async () => {
    const mport = await freePort();
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', '--metrics-bind', `127.0.0.1:${mport}`, app('slow-init.mjs')], { env: { SLOW_INIT_MS: '3000' } });
    started.push(c);
    await c.waitForLine(/metrics on 127\.0\.0\.1/);
    const early = await get({ port: mport, path: '/readyz' });
    assert.equal(early.status, 503);
    assert.equal(JSON.parse(early.body).stopping, false);
    assert.equal((await get({ port: mport, path: '/livez' })).status, 200);
    await c.waitReady();
    const ready = await get({ port: mport, path: '/readyz' });
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { ready: '2/2', stopping: false });

    // A request in flight holds the drain open; meanwhile readiness is off.
    const slow = get({ port, path: '/slow?ms=4000', timeoutMs: 20_000 });
    const inFlight = await until(mport, (t) => total(t, 'http_server_active_requests') >= 1);
    assert.ok(total(inFlight, 'http_server_active_requests') >= 1, 'the slow request reached a worker');
    c.signal('SIGTERM');
    await c.waitForLine(/graceful shutdown/);
    const draining = await get({ port: mport, path: '/readyz' });
    assert.equal(draining.status, 503);
    assert.equal(JSON.parse(draining.body).stopping, true);
    assert.equal((await get({ port: mport, path: '/livez' })).status, 200);
    const answered = await slow;
    assert.equal(answered.body, 'slow done', 'the drain let the request in flight finish');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('/readyz stays 200 through a reload under load', async () => {
    const { c, port, mport } = await serveWithMetrics(2);
    const statuses: number[] = [];
    let stop = false;
    const poll = (async () => {
      while (!stop) {
        statuses.push((await get({ port: mport, path: '/readyz' })).status);
        await sleep(25);
      }
    })();
    const traffic = load({ port, total: 3000, concurrency: 4, keepAlive: true, maxMs: 15_000 });
    await sleep(200);
    c.signal('SIGHUP');
    await c.waitForLine(/reload #1 done/, 20_000);
    await sleep(300);
    stop = true;
    await poll;
    const r = await traffic;
    assert.equal(r.failed, 0);
    assert.ok(statuses.length > 10);
    assert.deepEqual([...new Set(statuses)], [200]);
  });

  test('/metrics answers at once while every worker is blocked, and the accept queue shows waiting connections', async () => {
    const { port, mport } = await serveWithMetrics(2, ['--timeout', '20']);
    // Enough blocking requests, each on its own connection, that both workers are stuck.
    const blocks = Array.from({ length: 4 }, () => get({ port, path: '/block?ms=4000', timeoutMs: 20_000 }).catch(() => undefined));
    await sleep(500);
    const waiting: Socket[] = Array.from({ length: 5 }, () => connect(port, '127.0.0.1').on('error', () => {}));
    try {
      await sleep(300);
      const times: number[] = [];
      let text = '';
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        text = await scrape(mport);
        times.push(performance.now() - t0);
      }
      assert.ok(Math.min(...times) < 100, `/metrics took ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
      assert.ok(total(text, 'corral_listen_queue_length') > 0, text.split('\n').filter((l) => l.startsWith('corral_listen')).join('\n'));
      assert.equal(total(text, 'corral_listen_queue_limit'), 2048);
    } finally {
      for (const s of waiting) s.destroy();
      await Promise.all(blocks);
    }
  });

  test('corral status --json lists every worker with its real pid', async () => {
    const { c, port } = await serveHello(started, 2);
    await load({ port, total: 20, concurrency: 2, keepAlive: true });
    type Status = { master: { pid: number; generation: number }; listeners: Array<{ label: string; queue: number }>; workers: Array<{ pid: number; slot: number; state: string; requests: number }> };
    // The master knows the counts as of each worker's last heartbeat: ask until both reported.
    let st: Status | undefined;
    for (const end = Date.now() + 10_000; Date.now() < end; await sleep(200)) {
      const out = await runCli(['status', '--json', String(c.pid)]);
      assert.equal(out.code, 0, out.output);
      st = JSON.parse(out.output) as Status;
      if (st.workers.reduce((n, w) => n + w.requests, 0) >= 20) break;
    }
    assert.ok(st);
    assert.equal(st.master.pid, c.pid);
    assert.equal(st.master.generation, 1);
    assert.deepEqual(st.workers.map((w) => w.pid).sort(), (await c.workerPids()).sort());
    assert.deepEqual(st.workers.map((w) => w.slot).sort(), [1, 2]);
    assert.ok(st.workers.every((w) => w.state === 'ready'));
    assert.equal(st.workers.reduce((n, w) => n + w.requests, 0), 20);
    assert.equal(st.listeners[0]!.label, `127.0.0.1:${port}`);
    assert.equal(st.listeners[0]!.queue, 0);
    const table = await runCli(['status', String(c.pid)]);
    assert.equal(table.code, 0);
    assert.match(table.output, /^slot\s+pid\s+gen\s+state/m);
  });

  test('open event streams show on /metrics and in corral status; closed by the client, they are counted and timed; cut by a dead worker, counted forced', async () => {
    const mport = await freePort();
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--metrics-bind', `127.0.0.1:${mport}`, app('sse.mjs')]);
    started.push(c);
    await c.waitReady();
    const streams = await Promise.all([1, 2, 3].map(() => openStream(port)));
    const open = (t: string) => total(t, 'corral_long_lived_connections', 'kind="stream"');
    let text = await until(mport, (t) => open(t) === 3);
    assert.match(text, /^corral_long_lived_connections\{kind="stream",slot="1"\} 3$/m, text);
    assert.match(text, /^corral_long_lived_connections\{kind="websocket",slot="1"\} 0$/m);
    assert.equal(total(text, 'corral_long_lived_closes_total'), 0);

    const out = await runCli(['status', '--json', String(c.pid)]);
    assert.equal(out.code, 0, out.output);
    const st = JSON.parse(out.output) as { workers: Array<{ slot: number; websockets: number; streams: number }> };
    assert.deepEqual(st.workers.map((w) => [w.slot, w.websockets, w.streams]), [[1, 0, 3]]);
    const table = await runCli(['status', String(c.pid)]);
    assert.equal(table.code, 0, table.output);
    assert.match(table.output, /^slot .* ws +sse /m);

    for (const s of streams) s.close();
    const byClient = (t: string) => total(t, 'corral_long_lived_closes_total', 'kind="stream",closed_by="client"');
    text = await until(mport, (t) => byClient(t) === 3 && open(t) === 0);
    assert.equal(byClient(text), 3, text);
    assert.equal(open(text), 0);
    assert.equal(total(text, 'corral_long_lived_connection_duration_seconds_count', 'kind="stream"'), 3);
    assert.equal(total(text, 'corral_long_lived_connection_duration_seconds_bucket', 'kind="stream",le="+Inf"'), 3);

    // A worker killed with two streams open cannot report their close: the master counts them, forced.
    const more = await Promise.all([1, 2].map(() => openStream(port)));
    await until(mport, (t) => open(t) === 2);
    const [victim] = await c.workerPids();
    process.kill(victim!, 'SIGKILL');
    const forced = (t: string) => total(t, 'corral_long_lived_closes_total', 'kind="stream",closed_by="forced"');
    text = await until(mport, (t) => forced(t) === 2 && /^corral_workers\{state="ready"\} 1$/m.test(t));
    assert.equal(forced(text), 2, text);
    assert.equal(byClient(text), 3, 'the exited worker\'s closes stay counted');
    assert.equal(total(text, 'corral_long_lived_connection_duration_seconds_count', 'kind="stream"'), 3);
    for (const s of more) s.close();
  });

  test('a reload ends the old worker\'s event streams: closed by "drain", still counted once it exited', async () => {
    const mport = await freePort();
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--close-spread', '0', '--metrics-bind', `127.0.0.1:${mport}`, app('sse.mjs')]);
    started.push(c);
    await c.waitReady();
    const streams = await Promise.all([1, 2].map(() => openStream(port)));
    const ended = streams.map((s) => new Promise<void>((resolve) => s.req.once('close', () => resolve())));
    const open = (t: string) => total(t, 'corral_long_lived_connections', 'kind="stream"');
    await until(mport, (t) => open(t) === 2);
    const from = c.lines.length;
    c.signal('SIGHUP');
    await c.waitForLine(/reload #1 done/, 20_000, from);
    await Promise.all(ended);
    const drained = (t: string) => total(t, 'corral_long_lived_closes_total', 'kind="stream",closed_by="drain"');
    const text = await until(mport, (t) => total(t, 'corral_worker_exits_total', 'reason="reload"') === 1 && drained(t) === 2);
    assert.equal(drained(text), 2, text);
    assert.equal(total(text, 'corral_long_lived_closes_total', 'closed_by="forced"'), 0, 'ended politely, not cut');
    assert.equal(open(text), 0);
    assert.equal(total(text, 'corral_long_lived_connection_duration_seconds_count', 'kind="stream"'), 2);
  });

  test('corral health exits 0 when live and ready, 1 when not reachable', async () => {
    const { mport } = await serveWithMetrics(1);
    assert.equal((await runCli(['health', `127.0.0.1:${mport}`])).code, 0);
    assert.equal((await runCli(['health', '--ready'], { env: { CORRAL_METRICS_BIND: `127.0.0.1:${mport}` } })).code, 0);
    const closed = await freePort();
    const bad = await runCli(['health', `127.0.0.1:${closed}`]);
    assert.equal(bad.code, 1);
    assert.match(bad.output, /E_UNHEALTHY/);
  });

  test('corral health pointed at an app that answers 200 on /livez and /readyz (not corral\'s listener) exits 1', async () => {
    const impostor = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}\n'));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const port = (impostor.address() as { port: number }).port;
      for (const args of [['health'], ['health', '--ready']]) {
        const r = await runCli([...args, `127.0.0.1:${port}`]);
        assert.equal(r.code, 1, r.output);
        assert.match(r.output, /E_UNHEALTHY: .* answered 200 without corral's corral-health: (live|ready) header: it is not corral's metrics listener/);
      }
    } finally {
      impostor.close();
    }
  });

  test('/livez answers while 200 idle and 300 slow-header clients hold connections to the metrics listener', async (t) => {
    const { mport } = await serveWithMetrics(1);
    const clients: Socket[] = [];
    let drip: NodeJS.Timeout | undefined;
    /** A raw connection to the metrics listener, resolved once connected (or refused). */
    const open = () => new Promise<Socket>((resolve) => {
      const s = connect(mport, '127.0.0.1');
      clients.push(s);
      s.on('error', () => {}).resume(); // reading, so a close by the server is seen
      s.once('connect', () => resolve(s)).once('close', () => resolve(s));
    });
    try {
      await Promise.all(Array.from({ length: 200 }, open));
      const slow = await Promise.all(Array.from({ length: 300 }, open));
      // Each slow client trickles a request line, a byte every 200 ms, and never ends it.
      const line = 'GET /livez HTTP/1.1\r\nHost: x\r\n';
      let i = 0;
      drip = setInterval(() => {
        for (const s of slow) if (!s.destroyed) s.write(line[i % line.length]!);
        i++;
      }, 200);
      const times: number[] = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        const r = await get({ port: mport, path: '/livez', timeoutMs: 5000 }).catch((err: Error) => err);
        times.push(performance.now() - t0);
        assert.ok(!(r instanceof Error), `probe ${k + 1}: /livez failed: ${String(r)}`);
        assert.equal(r.status, 200);
        await sleep(200);
      }
      const holding = clients.filter((s) => !s.destroyed).length;
      t.diagnostic(`/livez in ${times.map((x) => x.toFixed(0)).join(', ')} ms with ${holding} of 500 connections held`);
      assert.ok(holding >= 100, `the clients still held connections while /livez was asked (${holding})`);
    } finally {
      clearInterval(drip);
      for (const s of clients) s.destroy();
    }
  });

  test('an app\'s own prom-client counter is summed over workers, gauges are per slot', async () => {
    const mport = await freePort();
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', 'off', '--metrics-bind', `127.0.0.1:${mport}`, app('prom-counter.mjs')]);
    started.push(c);
    await c.waitReady();
    const r = await load({ port, total: 200, concurrency: 4, keepAlive: false, path: '/hit' });
    assert.equal(r.failed, 0);
    const text = await until(mport, (t) => total(t, 'app_hits_total') === r.ok, 15_000);
    assert.match(text, /^app_hits_total\{path="\/hit"\} 200$/m);
    assert.match(text, /^# TYPE app_hits_total counter$/m);
    assert.match(text, /^app_worker_pid_parity\{slot="1"\} [01]$/m);
    assert.match(text, /^app_worker_pid_parity\{slot="2"\} [01]$/m);
  });
});
