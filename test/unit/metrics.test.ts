import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { describe, test } from 'node:test';
import type { AppMetricFamily, LongLivedFigures, WorkerFigures } from '../../src/ipc/messages.js';
import { FiguresStore } from '../../src/metrics/aggregate.js';
import { DURATION_BUCKETS, LONG_LIVED_BUCKETS } from '../../src/metrics/definitions.js';
import { liveness, readiness } from '../../src/metrics/health.js';
import { ListenQueues, parseProcNetTcp, socketInode } from '../../src/metrics/listen-queue.js';
import { MasterMetrics, type MasterView, type WorkerView } from '../../src/metrics/master-metrics.js';
import { renderFamily } from '../../src/metrics/text.js';
import { longLivedToSend, RequestMetrics } from '../../src/worker/metrics.js';

const NB = DURATION_BUCKETS.length;

function w(slot: number, gen = 1): { slot: number; gen: number } {
  return { slot, gen };
}

/** Figures of a worker that answered `n` GET 200 requests of 20 ms each. */
function served(n: number, extra: Partial<WorkerFigures> = {}): WorkerFigures {
  const counts = new Array<number>(NB + 1).fill(0);
  counts[2] = n; // 0.025 bucket
  return { requests: n, eld: 0.001, http: [['GET', 200, counts, n * 0.02]], ...extra };
}

function counter(name: string, value: number, labels: Record<string, string> = {}): AppMetricFamily {
  return { name, help: `${name} help`, type: 'counter', values: [{ value, labels }] };
}

function gauge(name: string, value: number): AppMetricFamily {
  return { name, help: `${name} help`, type: 'gauge', values: [{ value, labels: {} }] };
}

/**
 * Long-lived figures: `ws` and `sse` open; `closed` as [kind, closer, n]; each closed one
 * lasted 10 s (the 15 s bucket) for websockets and 100 s (the 300 s bucket) for streams.
 */
function longLived(ws: number, sse: number, closed: LongLivedFigures['closed'] = []): LongLivedFigures {
  const durations: LongLivedFigures['durations'] = [];
  for (const [kind, bucket, seconds] of [['websocket', 2, 10], ['stream', 4, 100]] as const) {
    const n = closed.filter(([k]) => k === kind).reduce((a, [, , c]) => a + c, 0);
    if (n === 0) continue;
    const counts = new Array<number>(LONG_LIVED_BUCKETS.length + 1).fill(0);
    counts[bucket] = n;
    durations.push([kind, counts, n * seconds]);
  }
  return { websockets: ws, streams: sse, closed, durations };
}

const count = (s: FiguresStore) => s.http().reduce((n, t) => n + t.counts.reduce((a, b) => a + b, 0), 0);

describe('worker request recorder', () => {
  test('counts each request once in the bucket its duration falls in (le is inclusive)', () => {
    const r = new RequestMetrics(true);
    r.record('GET', 200, 0.003);
    r.record('GET', 200, 0.005);
    r.record('GET', 200, 0.0051);
    r.record('GET', 200, 99);
    r.record('BREW', 418, 0.2);
    r.record(undefined, 400, 0.001);
    const snap = r.snapshot()!;
    const get = snap.find(([m, s]) => m === 'GET' && s === 200)!;
    assert.equal(get[2][0], 2, '0.003 and 0.005 are <= 0.005');
    assert.equal(get[2][1], 1);
    assert.equal(get[2][NB], 1, '99 s lands in +Inf');
    assert.ok(Math.abs(get[3] - 99.0131) < 1e-9);
    assert.ok(snap.some(([m, s]) => m === '_OTHER' && s === 418), 'unknown methods are _OTHER');
    assert.ok(snap.some(([m, s]) => m === '_OTHER' && s === 400));
    assert.equal(r.requests, 6);
  });

  test('values are cumulative: a later snapshot includes earlier ones', () => {
    const r = new RequestMetrics(true);
    r.record('POST', 201, 0.01);
    const a = r.snapshot()![0]!;
    r.record('POST', 201, 0.01);
    const b = r.snapshot()![0]!;
    assert.equal(a[2].reduce((x, y) => x + y), 1);
    assert.equal(b[2].reduce((x, y) => x + y), 2);
  });

  test('a long-lived response (a WebSocket, an event stream) is counted but kept out of the duration histogram', () => {
    const r = new RequestMetrics(true);
    r.record('GET', 200, 0.01);
    r.record('GET', 200, 3600, true);
    r.record('GET', 101, 120, true);
    assert.equal(r.requests, 3);
    const snap = r.snapshot()!;
    assert.equal(snap.length, 1, 'no 101 series');
    assert.equal(snap[0]![2].reduce((x, y) => x + y), 1);
    assert.ok(Math.abs(snap[0]![3] - 0.01) < 1e-9, 'the hour is not in the sum');
  });

  test('with metrics off only requests are counted', () => {
    const r = new RequestMetrics(false);
    r.record('GET', 200, 0.1);
    assert.equal(r.requests, 1);
    assert.equal(r.snapshot(), undefined);
  });
});

describe('aggregation over workers', () => {
  test('live workers are summed; a heartbeat replaces the previous one (never added twice)', () => {
    const s = new FiguresStore();
    const a = w(1);
    const b = w(2);
    s.update(a, served(5));
    s.update(a, served(7));
    s.update(b, served(3));
    assert.equal(count(s), 10);
    assert.equal(s.totalRequests(), 10);
  });

  test('counters never go back when a worker exits (SIGKILL: its last heartbeat stays counted)', () => {
    const s = new FiguresStore();
    const a = w(1);
    s.update(a, served(5));
    s.retire(a);
    assert.equal(count(s), 5);
    const replacement = w(1);
    s.update(replacement, served(2));
    assert.equal(count(s), 7);
    s.retire(replacement);
    s.retire(replacement); // a second exit notice changes nothing
    assert.equal(count(s), 7);
    assert.equal(s.totalRequests(), 7);
  });

  test('PROXY protocol rejections are summed by reason over live and exited workers', () => {
    const s = new FiguresStore();
    const a = w(1);
    const b = w(2);
    const rejected = (invalid: number, timeout: number) => ({ proxyRejected: { peer_not_allowed: 0, invalid, timeout, closed: 0 } });
    s.update(a, served(1, rejected(3, 1)));
    s.update(b, served(1));
    assert.deepEqual([...s.proxyRejected()], [['peer_not_allowed', 0], ['invalid', 3], ['timeout', 1], ['closed', 0]]);
    s.retire(a);
    s.update(b, served(1, rejected(2, 0)));
    assert.equal(s.proxyRejected().get('invalid'), 5);
    assert.equal(s.proxyRejected().get('timeout'), 1);
  });

  test('a heartbeat that arrives after the worker\'s exit was handled is counted once, not lost', () => {
    const s = new FiguresStore();
    const a = w(1);
    s.update(a, served(5, { app: [counter('jobs_total', 5)] }));
    s.retire(a);
    s.update(a, served(8, { app: [counter('jobs_total', 8)] }));
    assert.equal(count(s), 8);
    assert.equal(s.totalRequests(), 8);
    assert.deepEqual(s.app().find((f) => f.name === 'jobs_total')!.samples.map((x) => x.value), [8]);
    assert.equal(s.slotOwners().size, 0, 'an exited worker never speaks for a slot again');
  });

  test('totals are kept across a reload: old generation retired, new one starts from 0', () => {
    const s = new FiguresStore();
    const old = [w(1, 1), w(2, 1)];
    old.forEach((x, i) => s.update(x, served(10 + i)));
    const fresh = [w(1, 2), w(2, 2)];
    fresh.forEach((x) => s.update(x, served(0)));
    const before = count(s);
    old.forEach((x) => s.retire(x));
    assert.equal(count(s), before);
    fresh.forEach((x) => s.update(x, served(1)));
    assert.equal(count(s), before + 2);
    const sum = s.http()[0]!.sum;
    assert.ok(Math.abs(sum - (before + 2) * 0.02) < 1e-9);
  });

  test('app counters are summed and kept after exit; gauges are per slot from the newest worker', () => {
    const s = new FiguresStore();
    const a = w(1, 1);
    const b = w(2, 1);
    s.update(a, served(0, { app: [counter('jobs_total', 4), gauge('queue_depth', 9)] }));
    s.update(b, served(0, { app: [counter('jobs_total', 6), gauge('queue_depth', 1)] }));
    let fams = s.app();
    const jobs = () => fams.find((f) => f.name === 'jobs_total')!.samples;
    assert.deepEqual(jobs().map((x) => x.value), [10]);
    assert.deepEqual(fams.find((f) => f.name === 'queue_depth')!.samples.map((x) => [x.labels!.slot, x.value]), [[1, 9], [2, 1]]);
    // Slot 1 is replaced by a newer generation: its gauge speaks for the slot, the old one's counter stays.
    const a2 = w(1, 2);
    s.update(a2, served(0, { app: [counter('jobs_total', 1), gauge('queue_depth', 5)] }));
    fams = s.app();
    assert.deepEqual(fams.find((f) => f.name === 'queue_depth')!.samples.map((x) => [x.labels!.slot, x.value]), [[1, 5], [2, 1]]);
    s.retire(a);
    fams = s.app();
    assert.deepEqual(jobs().map((x) => x.value), [11]);
    // A heartbeat without app figures keeps the last ones (they are sent only when changed).
    s.update(b, served(0));
    fams = s.app();
    assert.deepEqual(jobs().map((x) => x.value), [11]);
  });

  test('app histograms are summed by bucket; names that clash with corral\'s are left out', () => {
    const s = new FiguresStore();
    const hist = (n: number): AppMetricFamily => ({
      name: 'job_seconds', help: 'h', type: 'histogram',
      values: [
        { metricName: 'job_seconds_bucket', labels: { le: 1 }, value: n },
        { metricName: 'job_seconds_bucket', labels: { le: '+Inf' }, value: n },
        { metricName: 'job_seconds_sum', labels: {}, value: n / 2 },
        { metricName: 'job_seconds_count', labels: {}, value: n },
      ],
    });
    s.update(w(1), served(0, { app: [hist(2), counter('process_cpu_seconds_total', 1), counter('corral_generation', 1)] }));
    s.update(w(2), served(0, { app: [hist(3)] }));
    const fams = s.app();
    assert.deepEqual(fams.map((f) => f.name), ['job_seconds']);
    assert.deepEqual(fams[0]!.samples.map((x) => x.value), [5, 5, 2.5, 5]);
  });
});

describe('long-lived connections', () => {
  const closes = (s: FiguresStore) => new Map(s.longLived().closes.map((c) => [`${c.kind} ${c.by}`, c.count]));
  const open = (s: FiguresStore) => [...s.longLivedOpen()].map(([slot, o]) => [slot, o.websocket, o.stream]);

  test('a heartbeat carries them only when useful: never for an app without any; only open counts when metrics are off', () => {
    assert.equal(longLivedToSend(longLived(0, 0), true), undefined);
    assert.equal(longLivedToSend(longLived(0, 0), false), undefined);
    const some = longLived(2, 1, [['stream', 'client', 3]]);
    assert.deepEqual(longLivedToSend(some, true), some);
    assert.deepEqual(longLivedToSend(some, false), { websockets: 2, streams: 1, closed: [], durations: [] });
    // Everything closed again: the closes are cumulative, so they are still sent.
    assert.deepEqual(longLivedToSend(longLived(0, 0, [['websocket', 'app', 1]]), true)?.closed, [['websocket', 'app', 1]]);
    assert.equal(longLivedToSend(longLived(0, 0, [['websocket', 'app', 1]]), false), undefined);
  });

  test('a worker that exits leaves its closes and durations counted; its open counts leave the gauge', () => {
    const s = new FiguresStore();
    const a = w(1);
    const b = w(2);
    s.update(a, served(0, { longLived: longLived(2, 3, [['websocket', 'client', 4], ['stream', 'app', 1]]) }));
    s.update(b, served(0, { longLived: longLived(1, 0, [['websocket', 'client', 1]]) }));
    s.update(w(3), served(0)); // no long-lived figures at all: zeros for its slot
    assert.deepEqual(open(s), [[1, 2, 3], [2, 1, 0], [3, 0, 0]]);
    assert.equal(closes(s).get('websocket client'), 5);
    assert.equal(closes(s).get('stream drain'), 0, 'every kind and closer is there, 0 included');
    assert.equal(closes(s).size, 8);

    // Slot 1 drains politely and exits: its last heartbeat has nothing open.
    s.update(a, served(0, { longLived: longLived(0, 0, [['websocket', 'client', 4], ['websocket', 'drain', 2], ['stream', 'app', 1], ['stream', 'drain', 3]]) }));
    s.retire(a);
    assert.deepEqual(open(s), [[2, 1, 0], [3, 0, 0]]);
    assert.equal(closes(s).get('websocket client'), 5);
    assert.equal(closes(s).get('websocket drain'), 2);
    assert.equal(closes(s).get('stream drain'), 3);
    assert.equal(closes(s).get('websocket forced'), 0);
    const ws = s.longLived().durations.find((d) => d.kind === 'websocket')!;
    assert.equal(ws.counts[2], 7, 'the exited worker\'s 6 and the live one\'s 1');
    assert.equal(ws.sum, 70);
    assert.equal(s.longLived().durations.find((d) => d.kind === 'stream')!.counts[4], 4);

    // A replacement in slot 1 starts from 0; the totals carry on.
    const a2 = w(1);
    s.update(a2, served(0, { longLived: longLived(0, 1, [['stream', 'client', 2]]) }));
    assert.deepEqual(open(s), [[1, 0, 1], [2, 1, 0], [3, 0, 0]]);
    assert.equal(closes(s).get('stream client'), 2);
    assert.equal(closes(s).get('stream drain'), 3);
  });

  test('what a killed worker still had open counts as closed by "forced"; its late last heartbeat replaces that guess', () => {
    const s = new FiguresStore();
    const a = w(1);
    s.update(a, served(0, { longLived: longLived(2, 5, [['stream', 'client', 1]]) }));
    s.retire(a); // SIGKILL: 2 websockets and 5 streams died with it
    assert.equal(closes(s).get('websocket forced'), 2);
    assert.equal(closes(s).get('stream forced'), 5);
    assert.equal(closes(s).get('stream client'), 1);
    assert.equal(s.longLivedOpen().size, 0);
    assert.equal(s.longLived().durations.find((d) => d.kind === 'stream')!.counts[4], 1, 'the cut ones have no known duration');
    // It was not killed after all: its last heartbeat, written at exit, comes after the exit was handled.
    s.update(a, served(0, { longLived: longLived(0, 0, [['stream', 'client', 1], ['websocket', 'drain', 2], ['stream', 'drain', 5]]) }));
    assert.equal(closes(s).get('websocket forced'), 0);
    assert.equal(closes(s).get('stream forced'), 0);
    assert.equal(closes(s).get('websocket drain'), 2);
    assert.equal(closes(s).get('stream drain'), 5);
    assert.equal(s.longLived().durations.find((d) => d.kind === 'stream')!.counts[4], 6);
  });

  test('during a reload the open counts of a slot add its draining worker\'s to its replacement\'s', () => {
    const s = new FiguresStore();
    const old = w(1, 1);
    const fresh = w(1, 2);
    s.update(old, served(0, { longLived: longLived(10, 4) }));
    s.update(fresh, served(0, { longLived: longLived(1, 0) }));
    assert.equal(s.slotOwners().get(1), fresh);
    assert.deepEqual(open(s), [[1, 11, 4]]);
    s.update(old, served(0, { longLived: longLived(0, 0, [['websocket', 'drain', 10], ['stream', 'drain', 4]]) }));
    s.retire(old);
    assert.deepEqual(open(s), [[1, 1, 0]]);
    assert.equal(closes(s).get('websocket drain'), 10);
  });
});

describe('/livez and /readyz', () => {
  test('live while the loop ticked within the last seconds', () => {
    assert.equal(liveness(1000, 1500).ok, true);
    assert.equal(liveness(1000, 7000).ok, false);
  });

  test('not ready before the first generation is ready, nor while stopping', () => {
    assert.deepEqual(readiness({ phase: 'starting', serving: undefined }), { ok: false, body: { ready: '0/0', stopping: false, starting: true } });
    assert.deepEqual(readiness({ phase: 'running', serving: { ready: 1, target: 2 } }), { ok: false, body: { ready: '1/2', stopping: false } });
    assert.deepEqual(readiness({ phase: 'running', serving: { ready: 2, target: 2 } }), { ok: true, body: { ready: '2/2', stopping: false } });
    assert.equal(readiness({ phase: 'stopping', serving: { ready: 2, target: 2 } }).ok, false);
    assert.equal(readiness({ phase: 'stopping', serving: { ready: 2, target: 2 } }).body.stopping, true);
  });
});

describe('/proc/net/tcp', () => {
  const sample = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F40 00000000:0000 0A 00000000:00000003 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0',
    '   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0',
    '   2: 0100007F:1F40 0100007F:D2C4 01 00000000:00000010 00:00000000 00000000  1000        0 5555 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');

  test('LISTEN rows give inode -> accept queue length (rx_queue, hex); other states are ignored', () => {
    const rows = parseProcNetTcp(sample);
    assert.deepEqual([...rows], [[4242, 3], [17, 0]]);
  });

  test('a real listener is found by its inode, and its queue holds connections not yet accepted', async () => {
    const { spawnSync } = await import('node:child_process');
    const server: Server = createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 50 }, r));
    try {
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      assert.ok(socketInode(fd));
      const q = new ListenQueues();
      assert.deepEqual(q.read([{ label: 'test', fd }], 50).get('test'), { length: 0, limit: 50 });
      // spawnSync blocks this event loop, so nothing is accepted while the child connects:
      // the connections wait in the kernel's queue, read before the loop runs again.
      const { port } = server.address() as { port: number };
      const script = `const net=require('net');for(let i=0;i<3;i++)net.connect(${port},'127.0.0.1');setTimeout(()=>process.exit(0),300)`;
      const r = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
      assert.equal(r.status, 0);
      assert.deepEqual(q.read([{ label: 'test', fd }], 50).get('test'), { length: 3, limit: 50 });
    } finally {
      server.close();
    }
  });

  test('a unix socket has no queue figures (absent, not 0)', async () => {
    const { tmpdir } = await import('node:os');
    const path = `${tmpdir()}/corral-lq-${process.pid}.sock`;
    const server = createServer();
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      assert.equal(new ListenQueues().read([{ label: 'unix', fd }], 50).size, 0);
    } finally {
      server.close();
    }
  });
});

describe('exposition', () => {
  test('families are written with HELP, TYPE, escaped labels and +Inf', () => {
    assert.equal(
      renderFamily('x_total', 'counter', 'a\nb', [{ labels: { path: 'a"b\\c' }, value: 1 }, { value: Infinity }]),
      '# HELP x_total a\\nb\n# TYPE x_total counter\nx_total{path="a\\"b\\\\c"} 1\nx_total +Inf\n',
    );
  });

  function view(workers: WorkerView[], over: Partial<MasterView> = {}): MasterView {
    return {
      phase: 'running', generation: 1, desired: 2, serving: { ready: 2, target: 2 }, lastReload: 'none yet',
      now: performance.now(), lastTickAt: performance.now(), workers, listeners: [], backlog: 2048, ...over,
    };
  }

  test('the text has every corral family, per-slot gauges and the summed histogram', () => {
    const now = performance.now();
    const ws: WorkerView[] = [1, 2].map((slot) => ({ slot, gen: 1, pid: 100 + slot, state: 'ready', spawnedAt: now, lastCheckin: now, rss: 1000 * slot, inflight: slot }));
    const m = new MasterMetrics(() => view(ws), { version: '9.9.9', node: 'v20.0.0' });
    m.workerReported(ws[0]!, served(3));
    m.workerReported(ws[1]!, served(4));
    m.workerStarted();
    m.workerStarted();
    m.reloadFinished(false);
    const text = m.text();
    assert.match(text, /^http_server_request_duration_seconds_count\{http_request_method="GET",http_response_status_code="200"\} 7$/m);
    assert.match(text, /^http_server_request_duration_seconds_bucket\{http_request_method="GET",http_response_status_code="200",le="0\.01"\} 0$/m);
    assert.match(text, /^http_server_request_duration_seconds_bucket\{http_request_method="GET",http_response_status_code="200",le="0\.025"\} 7$/m);
    assert.match(text, /^http_server_request_duration_seconds_bucket\{.*le="\+Inf"\} 7$/m);
    assert.match(text, /^http_server_active_requests 3$/m);
    assert.match(text, /^corral_workers\{state="ready"\} 2$/m);
    assert.match(text, /^corral_workers\{state="booting"\} 0$/m);
    assert.match(text, /^corral_worker_starts_total 2$/m);
    assert.match(text, /^corral_worker_exits_total\{reason="crash"\} 0$/m);
    assert.match(text, /^corral_reloads_total\{result="failed"\} 1$/m);
    assert.match(text, /^corral_worker_memory_bytes\{slot="2"\} 2000$/m);
    assert.match(text, /^corral_worker_eventloop_delay_seconds\{slot="1"\} 0\.001$/m);
    assert.match(text, /^corral_build_info\{version="9\.9\.9",node="v20\.0\.0"\} 1$/m);
    assert.doesNotMatch(text, /pid/);
    m.workerExited(ws[0]!, 'crash');
    assert.match(m.text(), /^corral_worker_exits_total\{reason="crash"\} 1$/m);
    assert.match(m.text(), /_count\{http_request_method="GET",http_response_status_code="200"\} 7$/m);
  });

  test('the long-lived families: open per kind and slot, durations by kind, closes kept after exits', () => {
    const now = performance.now();
    const ws: WorkerView[] = [1, 2].map((slot) => ({ slot, gen: 1, pid: 100 + slot, state: 'ready', spawnedAt: now, lastCheckin: now, rss: 1, inflight: 0 }));
    const m = new MasterMetrics(() => view(ws));
    let text = m.text();
    assert.match(text, /^# TYPE corral_long_lived_connections gauge$/m);
    assert.match(text, /^# TYPE corral_long_lived_connection_duration_seconds histogram$/m);
    assert.match(text, /^corral_long_lived_closes_total\{kind="stream",closed_by="forced"\} 0$/m, 'closes start at 0');
    assert.doesNotMatch(text, /^corral_long_lived_connection_duration_seconds_count/m, 'no histogram before a close');
    m.workerReported(ws[0]!, served(0, { longLived: longLived(2, 3, [['stream', 'client', 3]]) }));
    m.workerReported(ws[1]!, served(0));
    text = m.text();
    assert.match(text, /^corral_long_lived_connections\{kind="websocket",slot="1"\} 2$/m);
    assert.match(text, /^corral_long_lived_connections\{kind="stream",slot="1"\} 3$/m);
    assert.match(text, /^corral_long_lived_connections\{kind="stream",slot="2"\} 0$/m);
    assert.match(text, /^corral_long_lived_closes_total\{kind="stream",closed_by="client"\} 3$/m);
    assert.match(text, /^corral_long_lived_connection_duration_seconds_bucket\{kind="stream",le="60"\} 0$/m);
    assert.match(text, /^corral_long_lived_connection_duration_seconds_bucket\{kind="stream",le="300"\} 3$/m);
    assert.match(text, /^corral_long_lived_connection_duration_seconds_bucket\{kind="stream",le="\+Inf"\} 3$/m);
    assert.match(text, /^corral_long_lived_connection_duration_seconds_sum\{kind="stream"\} 300$/m);
    assert.match(text, /^corral_long_lived_connection_duration_seconds_count\{kind="stream"\} 3$/m);
    assert.doesNotMatch(text, /^corral_long_lived_connection_duration_seconds_count\{kind="websocket"\}/m);
    m.workerExited(ws[0]!, 'crash');
    text = m.text();
    assert.doesNotMatch(text, /^corral_long_lived_connections\{kind="stream",slot="1"\}/m, 'the slot\'s gauge left with its worker');
    assert.match(text, /^corral_long_lived_closes_total\{kind="stream",closed_by="client"\} 3$/m);
    assert.match(text, /^corral_long_lived_closes_total\{kind="websocket",closed_by="forced"\} 2$/m);
    assert.match(text, /^corral_long_lived_connection_duration_seconds_count\{kind="stream"\} 3$/m);
  });

  test('status lists every worker with its pid, requests and figures', () => {
    const now = performance.now();
    const ws: WorkerView[] = [{ slot: 1, gen: 1, pid: 4242, state: 'ready', spawnedAt: now - 5000, lastCheckin: now - 200, rss: 1 << 20, inflight: 0 }];
    const m = new MasterMetrics(() => view(ws, { now }));
    m.workerReported(ws[0]!, served(12));
    const st = m.status();
    assert.equal(st.workers.length, 1);
    assert.equal(st.workers[0]!.pid, 4242);
    assert.equal(st.workers[0]!.requests, 12);
    assert.equal(st.workers[0]!.uptimeS, 5);
    assert.equal(st.workers[0]!.lastCheckinS, 0.2);
    assert.equal(st.master.requests, 12);
    assert.equal(st.workers[0]!.websockets, 0);
    assert.equal(st.workers[0]!.streams, 0);
    m.workerReported(ws[0]!, served(12, { longLived: longLived(4, 2) }));
    assert.deepEqual([m.status().workers[0]!.websockets, m.status().workers[0]!.streams], [4, 2]);
  });
});
