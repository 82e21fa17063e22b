import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { get, waitHttp } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

async function serving(args: string[]): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', ...args, app('hello.mjs')]);
  started.push(c);
  if (args.includes('--log-dir')) await waitHttp(port);
  else await c.waitReady();
  return { c, port };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A raw connection: writes each part (a number is a pause in ms), then reads until the server
 * closes (or `closeAfterMs`, when the client hangs up itself). Returns what it received.
 */
function raw(port: number, parts: Array<string | Buffer | number>, closeAfterMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    s.on('close', () => resolve(got));
    const timer = setTimeout(() => s.destroy(), closeAfterMs);
    s.on('close', () => clearTimeout(timer));
    s.once('connect', async () => {
      for (const p of parts) {
        if (typeof p === 'number') await sleep(p);
        else if (!s.destroyed) s.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
      }
    });
  });
}

type Line = Record<string, unknown>;
const accessLines = (c: Corral): Line[] => c.lines.filter((l) => l.includes('"request_id"')).map((l) => JSON.parse(l) as Line);

async function nextLine(c: Corral, match: (l: Line) => boolean, what: string): Promise<Line> {
  const end = Date.now() + 15_000;
  for (;;) {
    const found = accessLines(c).filter(match);
    if (found.length > 0) return found[0]!;
    assert.ok(Date.now() < end, `no access line for ${what}; output:\n${c.output}`);
    await sleep(50);
  }
}

function saneDuration(l: Line, atLeastMs = 0, what = ''): void {
  const d = l.duration_ms as number;
  assert.equal(typeof d, 'number', what);
  assert.ok(d >= atLeastMs && d < 10_000, `${what}: duration ${d} ms, expected at least ${atLeastMs} and well under the worker's uptime`);
}

describe('requests refused by the HTTP parser and clients that go away', () => {
  test('garbage, a bad header and oversized headers: one line each with the status the client got', async () => {
    const { c, port } = await serving(['--max-header-size', '4096']);
    // A TLS ClientHello sent to the plain-HTTP port.
    const tls = await raw(port, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03])]);
    assert.match(tls, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const garbage = await nextLine(c, (l) => l.status === 400 && l.method === '-', 'the TLS handshake');
    assert.equal(garbage.remote_addr, '127.0.0.1');
    assert.equal(garbage.url, '\x16\x03\x01\x00\u00a5\x01\x00\x00\u00a1\x03\x03', 'the bytes sent instead of a request line');
    assert.equal(garbage.bytes, 0);
    assert.match(String(garbage.request_id), /^[0-9a-f-]{36}$/);
    saneDuration(garbage, 0, 'garbage');

    const bad = await raw(port, ['GET /bad-header HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n']);
    assert.match(bad, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const badLine = await nextLine(c, (l) => l.url === '/bad-header', 'the bad header');
    assert.equal(badLine.status, 400);
    assert.equal(badLine.method, 'GET');
    assert.equal(badLine.protocol, 'HTTP/1.1');
    assert.equal(badLine.remote_addr, '127.0.0.1');
    saneDuration(badLine, 0, 'bad header');

    const big = await raw(port, [`GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`]);
    assert.match(big, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    const bigLine = await nextLine(c, (l) => l.status === 431, 'the oversized headers');
    assert.equal(bigLine.remote_addr, '127.0.0.1');
    saneDuration(bigLine, 0, 'oversized headers');

    // Pipelined behind a good request in one packet: the bad one is logged as itself. As with
    // Node alone, the first answer is out (not cut with the connection), the second is none:
    // Node answers a parse error only while no response on the connection has begun.
    const piped = await raw(port, ['GET /piped-ok HTTP/1.1\r\nHost: x\r\n\r\nGET /piped-bad HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n']);
    assert.match(piped, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\{"pid":\d+,"path":"\/piped-ok"\}$/);
    assert.equal((await nextLine(c, (l) => l.url === '/piped-bad', 'the pipelined bad request')).status, 400);

    assert.equal((await get({ port })).status, 200, 'still serving');
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.deepEqual(accessLines(c).map((l) => `${String(l.status)} ${String(l.url).slice(0, 12)}`), ['400 \x16\x03\x01\x00\u00a5\x01\x00\x00\u00a1\x03\x03', '400 /bad-header', '431 -', '200 /piped-ok', '400 /piped-bad', '200 /'], 'one line per request');
  });

  test('an HTTP/1.1 request without Host: 400 with a request id, a duration from its first byte, no slow warning', async () => {
    const { c, port } = await serving(['--slow-request-threshold', '0.2']);
    // Long enough that the worker's uptime would exceed the threshold.
    await sleep(1500);
    const got = await raw(port, ['GET /no-host HTTP/1.1\r\n', 300, 'X-Request-Id: no-host-1\r\n\r\n']);
    assert.match(got, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const line = await nextLine(c, (l) => l.url === '/no-host', 'the request without Host');
    assert.equal(line.status, 400);
    assert.equal(line.request_id, 'no-host-1');
    assert.equal(line.remote_addr, '127.0.0.1');
    saneDuration(line, 250, 'no Host');
    assert.ok((line.duration_ms as number) < 1400, `duration ${String(line.duration_ms)} ms is not the worker's uptime`);
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.doesNotMatch(c.output, /slow request/, 'the client was slow, not the app');
  });

  test('headers that never finish: 408 logged once, timed from the first byte; a silent connection gets no line', async () => {
    const { c, port } = await serving(['--headers-timeout', '1']);
    const [partial, silent] = await Promise.all([
      raw(port, ['GET /partial HTTP/1.1\r\nHost: x\r\n']),
      raw(port, []),
    ]);
    assert.match(partial, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(silent, /^HTTP\/1\.1 408 Request Timeout\r\n/, 'Node answers a silent connection too');
    const line = await nextLine(c, (l) => l.status === 408, 'the headers timeout');
    assert.equal(line.remote_addr, '127.0.0.1');
    saneDuration(line, 900, 'headers timeout');
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.equal(accessLines(c).length, 1, `only the request that had begun is logged:\n${c.output}`);
  });

  test('a body that never finishes while the app has the request: 408 logged once, not 499', async () => {
    const { c, port } = await serving(['--headers-timeout', '1', '--request-timeout', '2']);
    const got = await raw(port, ['POST /slow?ms=4000 HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-body\r\nContent-Length: 100\r\n\r\n0123456789']);
    assert.match(got, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    const line = await nextLine(c, (l) => l.request_id === 'slow-body', 'the body timeout');
    assert.equal(line.status, 408);
    assert.equal(line.method, 'POST');
    assert.equal(line.url, '/slow?ms=4000');
    assert.equal(line.remote_addr, '127.0.0.1');
    saneDuration(line, 1900, 'body timeout');
    // The app answers later, into the closed connection: no second line.
    await sleep(2500);
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.deepEqual(accessLines(c).filter((l) => l.request_id === 'slow-body').map((l) => l.status), [408]);
  });

  test('a malformed chunked body of a request the app has: 400 logged once with its request', async () => {
    const { c, port } = await serving([]);
    const got = await raw(port, ['POST /slow?ms=500 HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad-chunk\r\nTransfer-Encoding: chunked\r\n\r\n', 50, 'zz\r\n']);
    assert.match(got, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const line = await nextLine(c, (l) => l.request_id === 'bad-chunk', 'the bad chunk');
    assert.equal(line.status, 400);
    assert.equal(line.method, 'POST');
    await sleep(800);
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.deepEqual(accessLines(c).filter((l) => l.request_id === 'bad-chunk').map((l) => l.status), [400]);
  });

  test('a client gone before the answer or while its headers arrive: 499 with its address; durations run from the first byte', async () => {
    const { c, port } = await serving([]);
    await raw(port, ['GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-1\r\n\r\n'], 300);
    const gone = await nextLine(c, (l) => l.request_id === 'gone-1', 'the abandoned request');
    assert.equal(gone.status, 499);
    assert.equal(gone.remote_addr, '127.0.0.1', 'the address outlives the socket');
    // Reset while its headers were still arriving.
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.write('GET /reset HTTP/1.1\r\nHost: x\r\n');
        setTimeout(() => {
          s.resetAndDestroy();
          resolve();
        }, 200);
      });
      s.on('error', () => {});
    });
    const reset = await nextLine(c, (l) => l.status === 499 && l.method === '-', 'the reset');
    assert.equal(reset.remote_addr, '127.0.0.1');
    saneDuration(reset, 150, 'reset');
    const slowHead = await raw(port, ['GET /first-byte HTTP/1.1\r\n', 600, 'Host: x\r\nX-Request-Id: first-byte\r\nConnection: close\r\n\r\n']);
    assert.match(slowHead, /^HTTP\/1\.1 200 OK\r\n/);
    saneDuration(await nextLine(c, (l) => l.request_id === 'first-byte', 'the slow head'), 550, 'from the first byte');
    c.signal('SIGQUIT');
    await c.waitExit();
  });

  test('bytes that could break a line reader are escaped in the files, in json and combined', async () => {
    // Header bytes 0x80-0xFF reach the app as the characters U+0080-U+00FF: NEL, CSI and
    // the UTF-8 bytes of U+2028 (E2 80 A8) among them.
    const hostile = Buffer.from([0x61, 0x85, 0x62, 0x9b, 0x33, 0x31, 0x6d, 0xe2, 0x80, 0xa8, 0x63, 0x7e]);
    const request = Buffer.concat([Buffer.from('GET /hostile HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: '), hostile, Buffer.from('\r\nReferer: '), hostile, Buffer.from('\r\n\r\n')]);
    for (const format of ['json', 'combined']) {
      const dir = mkdtempSync(join(tmpdir(), 'corral-hostile-'));
      const { c, port } = await serving(['--log-dir', dir, '--access-log-format', format]);
      assert.match(await raw(port, [request]), /^HTTP\/1\.1 200 OK\r\n/);
      c.signal('SIGQUIT');
      await c.waitExit();
      const bytes = readFileSync(join(dir, 'access.log'));
      const text = bytes.toString('utf8');
      // the readiness probe's line, and the hostile request's
      assert.equal(text.split('\n').filter(Boolean).length, 2, `one line each (${format})`);
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i]!;
        assert.ok(b >= 0x20 || b === 0x0a, `no C0 byte (${format})`);
        assert.notEqual(b, 0x7f, `no DEL (${format})`);
      }
      assert.doesNotMatch(text, /[\u0080-\u009f\u2028\u2029]/, `no C1 control, no U+2028/9 (${format})`);
      if (format === 'json') {
        const line = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line).find((l) => l.url === '/hostile')!;
        assert.equal(line.user_agent, hostile.toString('latin1'));
        assert.match(text, /"user_agent":"a\\u0085b\\u009b31m\u00e2\\u0080\u00a8c~"/);
      } else {
        assert.match(text, /"a\\xC2\\x85b\\xC2\\x9B31m\u00e2\\xC2\\x80\u00a8c~" "a\\xC2\\x85b\\xC2\\x9B31m\u00e2\\xC2\\x80\u00a8c~"$/m);
      }
    }
  });
});
