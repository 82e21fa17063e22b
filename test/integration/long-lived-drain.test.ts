/**
 * What a drain does to long-lived responses through the real CLI: event streams the app never
 * ends are ended cleanly by corral within close-spread, at a stop (QUIT) and at a reload (HUP,
 * the old workers), each with its access line; a request that never finishes is cut by its
 * worker as graceful-timeout runs out, with its access line, and the worker exits by itself.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';
import { alive } from '../helpers/proc.js';

const started: Corral[] = [];
const requests: ClientRequest[] = [];
const dirs: string[] = [];
after(() => {
  requests.forEach((r) => r.destroy());
  started.forEach((c) => c.kill());
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface AccessLine {
  url: string;
  status: number;
  bytes: number;
  duration_ms: number;
  pid: number;
}

async function serve(extra: string[]): Promise<{ c: Corral; port: number; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-ll-'));
  dirs.push(dir);
  const log = join(dir, 'access.log');
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--access-log', log, ...extra, app('long-lived.mjs')]);
  started.push(c);
  await c.waitReady();
  return { c, port, log };
}

function lines(log: string): AccessLine[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AccessLine);
}

interface Stream {
  /** The PID of the worker serving it (its first event). */
  pid: Promise<number>;
  /** 'end' (a clean end of body) or how it failed, and when (Date.now()). */
  outcome: Promise<{ how: string; at: number }>;
}

function stream(port: number, path = '/events'): Stream {
  let gotPid!: (pid: number) => void;
  const pid = new Promise<number>((r) => (gotPid = r));
  const outcome = new Promise<{ how: string; at: number }>((resolve) => {
    const done = (how: string) => resolve({ how, at: Date.now() });
    const req = httpGet({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        const m = /data: (\d+)/.exec(body);
        if (m) gotPid(Number(m[1]));
      });
      res.on('end', () => done('end'));
      res.on('aborted', () => done('aborted'));
      res.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
    });
    req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
    requests.push(req);
  });
  return { pid, outcome };
}

async function openStreams(port: number, n: number): Promise<Stream[]> {
  const all = Array.from({ length: n }, () => stream(port));
  await Promise.all(all.map((s) => s.pid));
  return all;
}

async function waitLines(log: string, cond: (l: AccessLine[]) => boolean, what: string, ms = 10_000): Promise<AccessLine[]> {
  const end = Date.now() + ms;
  for (;;) {
    const l = lines(log);
    if (cond(l)) return l;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; lines: ${JSON.stringify(l)}`);
    await sleep(50);
  }
}

/** The window corral's closes are spread over, and what a loaded machine may add to it. */
const SPREAD_MS = 1000;
const SLACK_MS = 700;

describe('long-lived responses at a drain, through the CLI', () => {
  test('QUIT: event streams that never end are ended cleanly within close-spread, each with its access line', async () => {
    const { c, port, log } = await serve(['--graceful-timeout', '10', '--close-spread', String(SPREAD_MS / 1000)]);
    const streams = await openStreams(port, 6);
    const t0 = Date.now();
    c.signal('SIGQUIT');
    const outcomes = await Promise.all(streams.map((s) => s.outcome));
    for (const o of outcomes) {
      assert.equal(o.how, 'end', 'a clean end of body, not a reset');
      assert.ok(o.at - t0 <= SPREAD_MS + SLACK_MS, `ended ${o.at - t0} ms after QUIT`);
    }
    const exit = await c.waitExit(10_000);
    assert.equal(exit.code, 0);
    // Spread, not all at the same instant: 6 draws over 1 s.
    const ats = outcomes.map((o) => o.at);
    assert.ok(Math.max(...ats) - Math.min(...ats) >= 50, `spread over ${Math.max(...ats) - Math.min(...ats)} ms`);
    const events = lines(log).filter((l) => l.url === '/events');
    assert.equal(events.length, 6, 'one line per stream');
    for (const l of events) {
      assert.equal(l.status, 200);
      assert.ok(l.bytes > 0);
    }
    assert.doesNotMatch(c.output, /killed by corral/);
    assert.doesNotMatch(c.output, /still open as graceful-timeout/, 'nothing had to be cut');
  });

  test('HUP: the old workers\' streams are ended cleanly within close-spread, with their lines; the new workers serve', async () => {
    const { c, port, log } = await serve(['--graceful-timeout', '10', '--close-spread', String(SPREAD_MS / 1000)]);
    const oldPids = await c.workerPids();
    const streams = await openStreams(port, 4);
    const from = c.lines.length;
    c.signal('SIGHUP');
    await c.waitForLine(/reload #\d+ done/, 20_000, from);
    const t0 = Date.now();
    const outcomes = await Promise.all(streams.map((s) => s.outcome));
    for (const o of outcomes) {
      assert.equal(o.how, 'end');
      assert.ok(o.at - t0 <= SPREAD_MS + SLACK_MS, `ended ${o.at - t0} ms after the new generation was ready`);
    }
    const got = await waitLines(log, (l) => l.filter((x) => x.url === '/events').length >= 4, 'the streams\' lines');
    const events = got.filter((l) => l.url === '/events');
    assert.equal(events.length, 4);
    assert.ok(events.every((l) => oldPids.includes(l.pid) && l.status === 200), JSON.stringify(events));
    const end = Date.now() + 5000;
    while (oldPids.some(alive) && Date.now() < end) await sleep(50);
    assert.ok(!oldPids.some(alive), 'the old workers exited');
    const again = stream(port);
    assert.ok(!oldPids.includes(await again.pid), 'a new worker serves the reconnect');
    assert.doesNotMatch(c.output, /killed by corral/);
  });

  test('TTOU: the streams of the worker scaled away end cleanly within close-spread, with their lines; the other worker\'s stay open', async () => {
    const { c, port, log } = await serve(['--graceful-timeout', '10', '--close-spread', String(SPREAD_MS / 1000)]);
    const workers = await c.workerPids();
    // Streams until both workers hold some (the kernel hands connections out), bounded.
    const streams: Stream[] = [];
    const pids: number[] = [];
    for (let i = 0; i < 40 && new Set(pids).size < 2; i++) {
      const s = stream(port);
      streams.push(s);
      pids.push(await s.pid);
    }
    assert.equal(new Set(pids).size, 2, 'both workers hold streams');
    const from = c.lines.length;
    const t0 = Date.now();
    c.signal('SIGTTOU');
    await c.waitForLine(/stopped \(TTOU\)/, 15_000, from);
    const gone = workers.filter((p) => !alive(p));
    assert.equal(gone.length, 1, 'one worker left');
    for (let i = 0; i < streams.length; i++) {
      if (pids[i] !== gone[0]) continue;
      const o = await streams[i]!.outcome;
      assert.equal(o.how, 'end', 'a clean end of body, not a reset');
      assert.ok(o.at - t0 <= SPREAD_MS + SLACK_MS + 1000, `ended ${o.at - t0} ms after TTOU`);
    }
    const ended = pids.filter((p) => p === gone[0]).length;
    const got = await waitLines(log, (l) => l.filter((x) => x.url === '/events').length >= ended, 'the ended streams\' lines');
    assert.equal(got.filter((l) => l.url === '/events').length, ended, 'a line for each ended stream, none for the others');
    const still = streams.filter((_, i) => pids[i] !== gone[0]);
    const settled = await Promise.race([Promise.race(still.map((s) => s.outcome)), sleep(500).then(() => 'open')]);
    assert.equal(settled, 'open', 'the remaining worker\'s streams stay open');
  });

  test('graceful-timeout: requests that never finish are cut by their worker with a line (499, or the status sent), no SIGKILL', async () => {
    const { c, port, log } = await serve(['--graceful-timeout', '2', '--close-spread', '0.5']);
    const hung = stream(port, '/hang');
    stream(port, '/hang?flush=1');
    const events = await openStreams(port, 2);
    // Both hanging requests are in a worker's hands before the stop.
    await sleep(300);
    const t0 = Date.now();
    c.signal('SIGQUIT');
    const exit = await c.waitExit(10_000);
    const took = Date.now() - t0;
    assert.equal(exit.code, 0);
    assert.ok(took < 2000 + 1500, `stopped ${took} ms after QUIT (graceful-timeout 2 s)`);
    assert.doesNotMatch(c.output, /killed by corral/, 'no worker needed the master\'s SIGKILL');
    assert.match(c.output, /still open as graceful-timeout \(2 s\) runs out; cutting them/);
    const all = lines(log);
    const byUrl = (u: string) => all.filter((l) => l.url === u);
    assert.equal(byUrl('/hang').length, 1, JSON.stringify(all));
    assert.equal(byUrl('/hang')[0]!.status, 499);
    assert.ok(byUrl('/hang')[0]!.duration_ms >= 1500, `cut after ${byUrl('/hang')[0]!.duration_ms} ms`);
    assert.equal(byUrl('/hang?flush=1').length, 1);
    assert.equal(byUrl('/hang?flush=1')[0]!.status, 200);
    assert.equal(byUrl('/hang?flush=1')[0]!.bytes, 'started\n'.length);
    assert.equal(byUrl('/events').length, 2, 'the streams were ended politely before, with their lines');
    assert.equal((await hung.outcome).how !== 'end', true, 'the unanswered request was cut, not answered');
    for (const s of events) assert.equal((await s.outcome).how, 'end');
  });

  test('the master killed: its workers end their streams politely and cut a request still running at graceful-timeout, each with a line', async () => {
    const { c, port, log } = await serve(['--graceful-timeout', '2', '--close-spread', '0.5']);
    const workers = await c.workerPids();
    stream(port, '/hang?flush=1');
    const events = await openStreams(port, 2);
    await sleep(300);
    const t0 = Date.now();
    process.kill(c.pid, 'SIGKILL');
    for (const s of events) assert.equal((await s.outcome).how, 'end');
    const end = Date.now() + 8000;
    while (workers.some(alive) && Date.now() < end) await sleep(50);
    assert.deepEqual(workers.filter(alive), [], 'every worker exited');
    assert.ok(Date.now() - t0 < 2000 + 1500, `exited ${Date.now() - t0} ms after the master died (graceful-timeout 2 s)`);
    const all = lines(log);
    assert.equal(all.filter((l) => l.url === '/events').length, 2, JSON.stringify(all));
    const cut = all.filter((l) => l.url === '/hang?flush=1');
    assert.equal(cut.length, 1, JSON.stringify(all));
    assert.equal(cut[0]!.status, 200);
  });
});
