import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { askStatus, renderStatus } from '../../src/commands/status.js';
import { parseControlLine } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';
import { CorralError } from '../../src/errors.js';

const DOC = {
  master: { pid: 42, uptimeS: 1.5, phase: 'running', generation: 1, workersDesired: 1, lastReload: 'never', requests: 3 },
  listeners: [{ label: '127.0.0.1:8000', queue: 0, limit: 511 }, { label: 'unix:/run/a.sock', queue: null, limit: null }],
  workers: [{ slot: 1, pid: 43, generation: 1, state: 'ready', uptimeS: 1, requests: 3, inflight: 0, rssBytes: 1e7, eventLoopDelayS: null, lastCheckinS: 0.2, websockets: 0, streams: 0 }],
};

describe('control protocol lines', () => {
  test('well-formed messages are returned checked', () => {
    assert.deepEqual(parseControlLine('{"t":"hello","pid":42,"seq":0}'), { t: 'hello', pid: 42, seq: 0 });
    assert.deepEqual(parseControlLine('{"t":"reload","seq":3,"ok":false,"detail":"boom"}'), { t: 'reload', seq: 3, ok: false, detail: 'boom' });
    assert.deepEqual(parseControlLine('{"t":"error","message":"unknown command"}'), { t: 'error', message: 'unknown command' });
  });

  test('anything else is an Error saying the line is malformed, never a crash or a wrong shape', () => {
    for (const line of ['', 'nonsense', '{"t":"hello"', 'null', '42', '[]']) {
      assert.throws(() => parseControlLine(line), /^Error: a malformed line \(not JSON\)|^Error: a malformed line \(not a control message\)/);
    }
    for (const line of ['{"t":"hello","pid":"42","seq":0}', '{"t":"hello","pid":0,"seq":0}', '{"t":"hello","pid":42}', '{"t":"reload","seq":-1,"ok":true}', '{"t":"reload","seq":1,"ok":"yes"}', '{"t":"party"}']) {
      assert.throws(() => parseControlLine(line), /not a control message/, line);
    }
  });
});

describe('status replies are checked field by field', () => {
  test('a well-formed reply is returned as it is, without fields it does not know', () => {
    assert.deepEqual(parseControlLine(JSON.stringify({ ...DOC, t: 'status', extra: 1 })), { t: 'status', ...DOC });
  });

  test('a reply of the wrong shape is an Error naming the field, never a crash later', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ ...DOC, listeners: undefined }, /a malformed status reply: listeners is not a list$/],
      [{ ...DOC, master: null }, /a malformed status reply: master is not an object$/],
      [{ ...DOC, master: { ...DOC.master, pid: '42' } }, /a malformed status reply: master\.pid is "42", not a number$/],
      [{ ...DOC, workers: [{ ...DOC.workers[0], rssBytes: undefined }] }, /a malformed status reply: workers\[0\]\.rssBytes is missing, not a number$/],
      [{ ...DOC, workers: [{ ...DOC.workers[0], state: 7 }] }, /workers\[0\]\.state is 7, not a string$/],
      [{ ...DOC, listeners: [{ label: 'x', queue: 'many', limit: null }] }, /listeners\[0\]\.queue is "many", not a number\|null$/],
      [{ ...DOC, workers: {} }, /workers is not a list/],
      [{ ...DOC, workers: [{ ...DOC.workers[0], streams: '3' }] }, /workers\[0\]\.streams is "3", not a number \(or absent\)$/],
      [{ ...DOC, workers: [{ ...DOC.workers[0], websockets: null }] }, /workers\[0\]\.websockets is null, not a number \(or absent\)$/],
    ];
    for (const [doc, re] of cases) assert.throws(() => parseControlLine(JSON.stringify({ ...(doc as object), t: 'status' })), re);
  });

  test('an older master\'s reply, without the long-lived counts, is read as it is: the counts stay absent', () => {
    const { websockets: _ws, streams: _sse, ...older } = DOC.workers[0]!;
    const parsed = parseControlLine(JSON.stringify({ ...DOC, workers: [older], t: 'status' }));
    assert.ok(parsed.t === 'status');
    assert.deepEqual(parsed.workers, [older]);
    assert.equal('websockets' in parsed.workers[0]!, false);
  });
});

describe('corral status in the terminal', () => {
  const now = { ...DOC.master, phase: 'running' as const };
  const worker = { ...DOC.workers[0]!, eventLoopDelayS: 0.0021, uptimeS: 75, lastCheckinS: 0.4 };

  test('each worker\'s open WebSockets and event streams are columns of their own', () => {
    const text = renderStatus({ master: now, listeners: [], workers: [{ ...worker, websockets: 12, streams: 3 }, { ...worker, slot: 2, pid: 44, websockets: 0, streams: 140 }] });
    const lines = text.split('\n');
    const head = lines.findIndex((l) => l.startsWith('slot'));
    assert.match(lines[head]!, /^slot +pid +gen +state +uptime +requests +in flight +ws +sse +rss +loop delay +loop busy +last check-in$/);
    const cells = (l: string) => l.split(/ {2,}/);
    const col = (name: string) => cells(lines[head]!).indexOf(name);
    assert.deepEqual([cells(lines[head + 1]!)[col('ws')], cells(lines[head + 1]!)[col('sse')]], ['12', '3']);
    assert.deepEqual([cells(lines[head + 2]!)[col('ws')], cells(lines[head + 2]!)[col('sse')]], ['0', '140']);
    assert.match(lines[head + 1]!, /1m15s +3 +0 +12 +3 +9\.5 MiB +2\.1 ms +- +0\.4s ago$/);
  });

  test('a range of workers: the scaling line says why the count is what it is; each worker\'s loop busy', () => {
    const master = { ...now, workersMin: 1, workersMax: 3, scaling: '2 worker(s) in 1..3: the load needs them' };
    const parsed = parseControlLine(JSON.stringify({ t: 'status', master, listeners: [], workers: [{ ...worker, loopBusy: 0.42 }] }));
    assert.ok(parsed.t === 'status');
    const lines = renderStatus(parsed).split('\n');
    assert.ok(lines.includes('scaling: 2 worker(s) in 1..3: the load needs them'), lines.join('\n'));
    assert.match(lines[lines.findIndex((l) => l.startsWith('slot')) + 1]!, / 2\.1 ms +42 % +0\.4s ago$/);
    assert.throws(() => parseControlLine(JSON.stringify({ t: 'status', master: { ...master, scaling: 3 }, listeners: [], workers: [] })), /master\.scaling is 3, not a string \(or absent\)$/);
  });

  test('an older master that does not send them shows "-", not a 0 it never said', () => {
    const { websockets: _ws, streams: _sse, ...older } = worker;
    const lines = renderStatus({ master: now, listeners: [], workers: [older] }).split('\n');
    const row = lines[lines.findIndex((l) => l.startsWith('slot')) + 1]!;
    assert.match(row, / 0 +- +- +9\.5 MiB /);
  });
});

describe('the control client (corral status over a socket it trusts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-client-'));
  // The client also looks in the temp directory for corral-PID.sock, and this process's PID
  // may be one a killed master had earlier, its socket left there: look only in `dir`.
  const savedTmp = process.env.TMPDIR;
  before(() => {
    process.env.TMPDIR = dir;
  });
  after(() => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    rmSync(dir, { recursive: true, force: true });
  });
  const pid = process.pid;

  /** A socket of ours (so trusted for our own PID) that answers each line with `reply`. */
  async function fake(name: string, reply: (line: string) => string | undefined): Promise<{ path: string; server: Server }> {
    const path = join(dir, name);
    const server = createServer((s) => {
      s.on('error', () => {});
      createInterface({ input: s }).on('line', (l) => {
        const out = reply(l);
        if (out === undefined) s.end();
        else if (out !== '') s.write(out);
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    chmodSync(path, 0o600);
    return { path, server };
  }

  async function refusal(path: string, timeoutMs = 2000): Promise<string> {
    const err = await askStatus(pid, timeoutMs, path).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof CorralError, `a CorralError, not ${String(err)}`);
    assert.equal(err.code, 'E_STATUS_TARGET');
    return err.message;
  }

  test('a well-formed answer for its own PID is the status', async () => {
    const f = await fake('ok.sock', (l) => (l === 'status' ? JSON.stringify({ ...DOC, master: { ...DOC.master, pid }, t: 'status' }) + '\n' : undefined));
    try {
      const st = await askStatus(pid, 2000, f.path);
      assert.equal(st.master.pid, pid);
      assert.deepEqual(st.workers, DOC.workers);
    } finally {
      f.server.close();
    }
  });

  test('malformed, foreign, silent and hung-up answers are refused with E_STATUS_TARGET and say why', async () => {
    const cases: Array<[string, (l: string) => string | undefined, RegExp]> = [
      ['nojson.sock', () => 'hello there\n', /sent a malformed line \(not JSON\)/],
      ['noworkers.sock', () => JSON.stringify({ t: 'status', master: { ...DOC.master, pid }, listeners: [] }) + '\n', /sent a malformed status reply: workers is not a list/],
      ['other.sock', () => JSON.stringify({ ...DOC, t: 'status' }) + '\n', new RegExp(`answers for PID 42, not ${pid}`)],
      ['error.sock', () => JSON.stringify({ t: 'error', message: 'unknown command "status"' }) + '\n', /unknown command "status"/],
      ['hangup.sock', () => undefined, /closed before answering/],
      ['silent.sock', () => '', /no answer within 0\.3 s/],
    ];
    for (const [name, reply, re] of cases) {
      const f = await fake(name, reply);
      try {
        assert.match(await refusal(f.path, 300), re, name);
      } finally {
        f.server.close();
      }
    }
  });

  test('a socket nobody listens on (its master was killed outright) is named for what it is', async () => {
    const path = join(dir, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.stdout.write('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout!, 'data');
    chmodSync(path, 0o600);
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok(statSync(path).isSocket(), 'a killed process leaves its socket file');
    assert.match(await refusal(path), new RegExp(`stale\\.sock of PID ${pid}: nothing listens on it \\(connect ECONNREFUSED .*\\): .*PID ${pid} may not be a corral master`));
  });

  test('a socket others could have made is not even connected to', async () => {
    let heard = false;
    const f = await fake('open.sock', () => {
      heard = true;
      return undefined;
    });
    try {
      chmodSync(f.path, 0o666);
      assert.match(await refusal(f.path), /not trusting the control socket of PID \d+: .*writable by other users/);
      assert.equal(heard, false);
    } finally {
      f.server.close();
    }
  });
});

describe('control server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-control-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function client(path: string): Promise<{ s: Socket; lines: string[]; next: () => Promise<string>; closed: Promise<void> }> {
    const s = connect(path);
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    const lines: string[] = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l);
      waiters.splice(0).forEach((w) => w());
    });
    let read = 0;
    const next = async () => {
      while (lines.length <= read) await new Promise<void>((r) => waiters.push(r));
      return lines[read++]!;
    };
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    return { s, lines, next, closed };
  }

  test('answers watch with its pid, unknown or malformed commands with an error, and hangs up on floods', async () => {
    const path = join(dir, 'c.sock');
    const server = await ControlServer.listen(path);
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      server.onWatch(() => 7);
      const a = await client(path);
      a.s.write('{"not":"a command"}\r\nwatch\n');
      assert.deepEqual(JSON.parse(await a.next()), { t: 'error', message: 'unknown command "{\\"not\\":\\"a command\\"}"' });
      assert.deepEqual(JSON.parse(await a.next()), { t: 'hello', pid: process.pid, seq: 7 });
      server.broadcast({ t: 'reload', seq: 8, ok: true, detail: 'fine' });
      assert.deepEqual(JSON.parse(await a.next()), { t: 'reload', seq: 8, ok: true, detail: 'fine' });
      a.s.destroy();

      const flood = await client(path);
      flood.s.write('x'.repeat(10_000));
      await flood.closed;
      assert.deepEqual(flood.lines, [], 'a flood gets no answer, only a hang-up');
    } finally {
      server.close();
    }
  });
});
