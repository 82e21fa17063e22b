import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { asNobody, Corral, runCli, type Exit } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { FakeNotifySocket } from '../helpers/notify-socket.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const started: Corral[] = [];
const cleanups: Array<() => void> = [];
after(() => {
  started.forEach((c) => c.kill());
  cleanups.forEach((f) => f());
});

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `corral-bad-${prefix}-`));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A start that must fail as a configuration error: exit 78, one line with the code, no stack. */
function assertConfigError(r: Exit & { output: string }, code: string, re: RegExp): void {
  assert.equal(r.code, 78, r.output);
  const lines = r.output.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.output}`);
  assert.match(lines[0]!, new RegExp(`^corral: error ${code}: `));
  assert.match(lines[0]!, re);
  assert.doesNotMatch(r.output, /^\s+at /m, 'no stack');
}

describe('config modules that misbehave', () => {
  test('a config whose exported function never settles: exit 78 naming the file and the limit (not a silent exit 0)', async () => {
    const cwd = tempDir('hang');
    writeFileSync(join(cwd, 'corral.config.mjs'), 'export default () => new Promise(() => {})\n');
    const r = await runCli([app('hello.mjs')], { cwd, timeoutMs: 30_000 });
    assertConfigError(r, 'E_CONFIG_FILE', /corral\.config\.mjs did not finish loading within 10 s/);
  });

  test('a config whose getter throws: exit 78 with one line (not exit 1 with a stack)', async () => {
    const cwd = tempDir('getter');
    writeFileSync(join(cwd, 'corral.config.mjs'), "export default { get workers() { throw new Error('x') } }\n");
    const r = await runCli([app('hello.mjs')], { cwd });
    assertConfigError(r, 'E_CONFIG_FILE', /corral\.config\.mjs cannot be loaded: x$/);
  });

  test('a reload whose config never settles fails (log, STATUS, reload --wait) and the next one, once fixed, succeeds', async () => {
    const cwd = tempDir('reload-hang');
    const port = await freePort();
    const config = (body: string) => writeFileSync(join(cwd, 'corral.config.mjs'), body);
    config(`export default { workers: 1, accessLog: 'off', bind: ['127.0.0.1:${port}'] }\n`);
    const sock = await FakeNotifySocket.create();
    cleanups.push(() => sock.close());
    const c = new Corral([app('hello.mjs')], { cwd, env: { NOTIFY_SOCKET: sock.path } });
    started.push(c);
    await c.waitReady();
    config(`await new Promise(() => {});\nexport default { workers: 2, accessLog: 'off', bind: ['127.0.0.1:${port}'] }\n`);
    const bad = await runCli(['reload', '--wait', String(c.pid)], { timeoutMs: 40_000 });
    assert.equal(bad.code, 1, bad.output);
    assert.match(bad.output, /E_RELOAD_FAILED: reload of \d+ failed: configuration invalid: config file .*corral\.config\.mjs did not finish loading within 10 s/);
    await c.waitForLine(/reload #1 failed, previous generation keeps serving: .*did not finish loading within 10 s/);
    await sock.waitFor((m) => m.startsWith('STATUS=') && m.includes('last reload: FAILED'));
    assert.equal((await get({ port })).status, 200, 'the old generation keeps serving');
    config(`export default { workers: 2, accessLog: 'off', bind: ['127.0.0.1:${port}'] }\n`);
    const good = await runCli(['reload', '--wait', String(c.pid)], { timeoutMs: 40_000 });
    assert.equal(good.code, 0, good.output);
    assert.match(good.output, /reload #2 done: generation 2 serving with 2 worker\(s\)/);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });
});

/** A `sleep` of our own: a process that is not a corral master. */
function sleeper(): { proc: ChildProcess; exited: () => boolean } {
  const proc = spawn('sleep', ['60'], { stdio: 'ignore' });
  let gone = false;
  proc.once('exit', () => (gone = true));
  cleanups.push(() => proc.kill('SIGKILL'));
  return { proc, exited: () => gone };
}

/** A fake control socket at the path a client looks at for `pid`, answering `watch` with `reply`. */
async function fakeControlSocket(pid: number, reply: string): Promise<{ path: string; server: Server; heard: string[] }> {
  const path = join(tmpdir(), `corral-${pid}.sock`);
  const heard: string[] = [];
  const server = createServer((s: Socket) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      heard.push(d);
      s.write(reply);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  cleanups.push(() => {
    server.close();
    if (existsSync(path)) unlinkSync(path);
  });
  return { path, server, heard };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('corral reload PID touches only corral masters', () => {
  test('the PID of a sleep: refused with E_RELOAD_TARGET, with and without --wait, and the sleep lives', async () => {
    const s = sleeper();
    for (const args of [['reload'], ['reload', '--wait']]) {
      const r = await runCli([...args, String(s.proc.pid)]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.output, /E_RELOAD_TARGET: PID \d+ has no corral control socket .*Nothing was signalled/);
    }
    await settle();
    assert.equal(s.exited(), false, 'the sleep was not signalled');
  });

  test('a control socket that belongs to another user is not trusted', { skip: !isRoot && 'needs root to chown the socket' }, async () => {
    const s = sleeper();
    const pid = s.proc.pid!;
    const fake = await fakeControlSocket(pid, JSON.stringify({ t: 'hello', pid, seq: 0 }) + '\n');
    chownSync(fake.path, NOBODY, NOBODY);
    for (const args of [['reload'], ['reload', '--wait']]) {
      const r = await runCli([...args, String(pid)]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.output, new RegExp(`E_RELOAD_TARGET: not trusting the control socket of PID ${pid}: .*belongs to uid ${NOBODY}, but PID ${pid} runs as uid 0; nothing was signalled`));
    }
    assert.deepEqual(fake.heard, [], 'the client never even talked to it');
    await settle();
    assert.equal(s.exited(), false);
  });

  test('a control socket writable by others, or answering for another PID, or talking nonsense, is refused', async () => {
    const s = sleeper();
    const pid = s.proc.pid!;
    const cases: Array<[string, RegExp, ((path: string) => void)?]> = [
      [JSON.stringify({ t: 'hello', pid, seq: 0 }) + '\n', /is writable by other users \(mode 666\)/, (p) => chmodSync(p, 0o666)],
      [JSON.stringify({ t: 'hello', pid: pid + 1, seq: 0 }) + '\n', new RegExp(`answers for PID ${pid + 1}, not ${pid}; nothing was signalled`)],
      ['this is not json\n', /sent a malformed line \(not JSON\)/],
      [JSON.stringify({ t: 'hello', pid: String(pid) }) + '\n', /sent a malformed line \(not a control message\)/],
    ];
    for (const [reply, re, prepare] of cases) {
      const fake = await fakeControlSocket(pid, reply);
      chmodSync(fake.path, 0o600);
      prepare?.(fake.path);
      const r = await runCli(['reload', String(pid)]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.output, /E_RELOAD_TARGET: /);
      assert.match(r.output, re);
      assert.doesNotMatch(r.output, /^\s+at /m, 'no stack');
      await new Promise<void>((resolve) => fake.server.close(() => resolve()));
      if (existsSync(fake.path)) unlinkSync(fake.path);
    }
    await settle();
    assert.equal(s.exited(), false);
  });

  test('a real master reloads with and without --wait', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', app('hello.mjs')]);
    started.push(c);
    await c.waitReady();
    const plain = await runCli(['reload', String(c.pid)]);
    assert.equal(plain.code, 0, plain.output);
    await c.waitForLine(/reload #1 done/);
    const waited = await runCli(['reload', '--wait', String(c.pid)]);
    assert.equal(waited.code, 0, waited.output);
    assert.match(waited.output, /^reload #2 done: /m);
    assert.equal((await get({ port })).status, 200);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });
});

/**
 * Execs its arguments with a socket of the kind asked for as fd 3, as systemd would
 * (LISTEN_FDS=1, LISTEN_PID=its own PID, which exec keeps) or bare (for --bind fd://3).
 */
const PASS_SOCKET = `
import os, socket, sys
kind, mode, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
os.open('/dev/null', os.O_RDONLY)  # takes fd 3, so no socket below lands there
if kind == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
elif kind == 'unix-dgram':
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind('\\0corral-test-%d' % os.getpid())
elif kind == 'tcp-connection':
    s = socket.create_connection(('127.0.0.1', int(os.environ['PEER_PORT'])))
elif kind == 'unix-connection':
    s, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM); os.set_inheritable(peer.fileno(), True)
os.dup2(s.fileno(), 3, inheritable=True)
if mode == 'systemd':
    os.environ['LISTEN_FDS'] = '1'; os.environ['LISTEN_PID'] = str(os.getpid())
os.execvp(cmd[0], cmd)
`;

describe('bad input at start is a configuration error (exit 78, one line)', () => {
  let passSocket = '';
  const pass = (kind: string, mode: 'systemd' | 'fd') => {
    if (!passSocket) {
      passSocket = join(tempDir('pass'), 'pass-socket.py');
      writeFileSync(passSocket, PASS_SOCKET);
    }
    return ['python3', passSocket, kind, mode];
  };

  test('LISTEN_FDS larger than the descriptors that exist', async () => {
    const r = await runCli([app('hello.mjs')], { env: { LISTEN_FDS: '99999999999' } });
    assertConfigError(r, 'E_LISTEN_FDS', /LISTEN_FDS=99999999999 is more descriptors than this process has open/);
  });

  test('LISTEN_PID that is not a PID', async () => {
    const r = await runCli([app('hello.mjs')], { env: { LISTEN_FDS: '1', LISTEN_PID: 'abc' } });
    assertConfigError(r, 'E_LISTEN_FDS', /LISTEN_PID="abc" is not a process ID/);
  });

  test('a UDP or unix datagram socket passed by "systemd" or as fd://3', async () => {
    for (const [kind, mode] of [['udp', 'systemd'], ['udp', 'fd'], ['unix-dgram', 'systemd']] as const) {
      const args = mode === 'fd' ? ['--bind', 'fd://3', app('hello.mjs')] : [app('hello.mjs')];
      const r = await runCli(args, { wrap: pass(kind, mode) });
      assertConfigError(r, 'E_LISTEN_FDS', /is not a stream socket \(a UDP or other datagram socket\?\)/);
    }
  });

  test('a datagram socket from systemd-socket-activate --datagram', { skip: !existsSync('/usr/bin/systemd-socket-activate') && 'no systemd-socket-activate' }, async () => {
    const port = await freePort();
    const c = new Corral([app('hello.mjs')], { wrap: ['systemd-socket-activate', '--datagram', '-l', `127.0.0.1:${port}`] });
    started.push(c);
    // it starts corral on the first datagram
    const { createSocket } = await import('node:dgram');
    const u = createSocket('udp4');
    const poke = setInterval(() => u.send('x', port, '127.0.0.1'), 200);
    try {
      const exit = await c.waitExit(20_000);
      await new Promise((r) => setTimeout(r, 20));
      const own = c.lines.filter((l) => l.startsWith('corral:'));
      assert.equal(exit.code, 78, c.output);
      assert.equal(own.length, 1, c.output);
      assert.match(own[0]!, /^corral: error E_LISTEN_FDS: systemd passed fd 3 \(.*\) is not a stream socket/);
      assert.doesNotMatch(c.output, /^\s+at /m);
    } finally {
      clearInterval(poke);
      u.close();
    }
  });

  test('a connected TCP or unix socket (not one to accept on), by "systemd" or as fd://3', async () => {
    const peers: Socket[] = [];
    const peer = createServer((s) => peers.push(s));
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const peerPort = (peer.address() as { port: number }).port;
    try {
      for (const [kind, mode] of [['tcp-connection', 'systemd'], ['tcp-connection', 'fd'], ['unix-connection', 'systemd']] as const) {
        const args = mode === 'fd' ? ['--bind', 'fd://3', app('hello.mjs')] : [app('hello.mjs')];
        const r = await runCli(args, { wrap: pass(kind, mode), env: { PEER_PORT: String(peerPort) } });
        assertConfigError(r, 'E_LISTEN_FDS', /is a connected socket \(a connection .*\), not one to accept connections on; .*Accept=no/);
      }
    } finally {
      peers.forEach((s) => s.destroy());
      peer.close();
    }
  });

  test('a unix socket in a directory that does not exist says so', async () => {
    const missing = join(tempDir('nodir'), 'not-here');
    const r = await runCli(['--bind', `unix:${missing}/web.sock`, app('hello.mjs')]);
    assertConfigError(r, 'E_BIND_FAILED', new RegExp(`the directory ${missing} does not exist`));
    assert.doesNotMatch(r.output, /ports below 1024/);
  });

  test('a unix socket in a directory the user cannot write says so', { skip: !isRoot && 'needs root to run as nobody' }, async () => {
    const dir = tempDir('rodir');
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const r = await runCli(['--bind', `unix:${locked}/web.sock`, app('hello.mjs')], {
      wrap: asNobody(),
    });
    assertConfigError(r, 'E_BIND_DENIED', new RegExp(`the directory ${locked} is not writable by uid ${NOBODY}`));
    assert.doesNotMatch(r.output, /ports below 1024/);
  });

  test('max-header-size above 1M', async () => {
    const r = await runCli(['--max-header-size', '1G', app('hello.mjs')]);
    assertConfigError(r, 'E_CONFIG_VALUE', /max-header-size \(from command line --max-header-size\): "1G" is not valid: .*at most 1M/);
  });
});

/**
 * What a plain HTTP client does: sends the whole request, then reads the answer until the
 * server closes. A failed send (the server reset the connection) ends it with what was read.
 */
function sendThenRead(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(), 15_000);
    s.pause();
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got).toString('latin1'));
    });
    s.write(request, 'latin1', (err) => {
      if (!err) s.resume();
    });
  });
}

describe('requests the HTTP parser refuses while the client is still sending', () => {
  test('a 100 KB header, a 100 KB URL, a bad header before a 100 KB body, too long chunk extensions: the client reads the status the access log says', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', app('hello.mjs')]);
    started.push(c);
    await c.waitReady();
    const big = 'a'.repeat(100_000);
    const cases: Array<[string, string, number]> = [
      ['100 KB header', `GET /big-header HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`, 431],
      ['100 KB URL', `GET /${big} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
      ['bad header, then a body', `POST /bad HTTP/1.1\r\nHost: x\r\nBad Header: v\r\nContent-Length: ${big.length}\r\n\r\n${big}`, 400],
      // The app has this one (it answers after 3 s); its body fails first.
      ['chunk extensions', `POST /slow?ms=3000 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;${big}`, 413],
    ];
    const expected: number[] = [];
    for (const [what, request, status] of cases) {
      for (let i = 0; i < 5; i++) {
        const got = await sendThenRead(port, request);
        assert.match(got, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}, attempt ${i + 1}: got ${JSON.stringify(got.slice(0, 60))}`);
        expected.push(status);
      }
    }
    assert.equal((await get({ port })).status, 200, 'still serving');
    expected.push(200);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    const logged = c.lines.filter((l) => l.includes('"request_id"')).map((l) => (JSON.parse(l) as { status: number }).status);
    assert.deepEqual(logged, expected, 'one access line per request, with the status its client read');
  });
});
