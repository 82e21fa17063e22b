import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
const balancers: ChildProcess[] = [];
after(() => {
  started.forEach((c) => c.kill());
  balancers.forEach((b) => b.kill('SIGKILL'));
});

const REQ = 'GET /pp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';

/** Writes the chunks one by one (a pause between them, so they arrive as separate segments) and returns all that comes back before the close. */
function exchange(port: number, chunks: Array<string | Buffer>, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.on('connect', () => {
      void (async () => {
        for (const c of chunks) {
          if (s.destroyed) return;
          s.write(c);
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
    });
  });
}

function v2Inet(src: number[], sport: number): Buffer {
  const head = Buffer.from('0d0a0d0a000d0a515549540a21110000', 'hex');
  const body = Buffer.alloc(12 + 7);
  Buffer.from(src).copy(body, 0);
  Buffer.from([127, 0, 0, 1]).copy(body, 4);
  body.writeUInt16BE(sport, 8);
  body.writeUInt16BE(8000, 10);
  // one TLV (PP2_TYPE_UNIQUE_ID) the server skips
  Buffer.from([0x05, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64]).copy(body, 12);
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
}

function accessLines(c: Corral): Array<Record<string, unknown>> {
  return c.lines.filter((l) => l.includes('"url":"/pp"')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function serving(extra: string[]): Promise<{ c: Corral; proxied: number; plain: number }> {
  const proxied = await freePort();
  const plain = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${proxied}`, '--bind', `127.0.0.1:${plain}`, '--proxy-protocol', `127.0.0.1:${proxied}`,
    '--workers', '1', '--access-log', '-', ...extra, app('hello.mjs')]);
  started.push(c);
  await c.waitReady();
  return { c, proxied, plain };
}

describe('PROXY protocol listeners', () => {
  test('v1 and v2 headers give the access line the client address, split or whole; the other listener is unaffected', async () => {
    const { c, proxied, plain } = await serving([]);
    const v1 = await exchange(proxied, [`PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${proxied}\r\n${REQ}`]);
    assert.match(v1, /^HTTP\/1\.1 200 /);
    const split = await exchange(proxied, ['PROXY TCP6 2001:db8::7 ::1 4', `0001 ${proxied}\r`, `\n${REQ.slice(0, 10)}`, REQ.slice(10)]);
    assert.match(split, /^HTTP\/1\.1 200 /);
    const header = v2Inet([198, 51, 100, 9], 40002);
    const v2 = await exchange(proxied, [header.subarray(0, 7), Buffer.concat([header.subarray(7), Buffer.from(REQ)])]);
    assert.match(v2, /^HTTP\/1\.1 200 /);
    const direct = await exchange(plain, [REQ]);
    assert.match(direct, /^HTTP\/1\.1 200 /);
    for (const t0 = Date.now(); accessLines(c).length < 4 && Date.now() - t0 < 5000;) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(accessLines(c).map((l) => l.remote_addr), ['203.0.113.7', '2001:db8::7', '198.51.100.9', '127.0.0.1']);
    // peer_addr is the socket's peer (the balancer) whenever it is not the client.
    assert.deepEqual(accessLines(c).map((l) => l.peer_addr), ['127.0.0.1', '127.0.0.1', '127.0.0.1', undefined]);
  });

  test('forwarding headers behind a PROXY listener are walked from the header\'s source', async () => {
    const { c, proxied } = await serving([]);
    const xff = (v: string) => REQ.replace('Host: a\r\n', `Host: a\r\nX-Forwarded-For: ${v}\r\n`);
    // The source is a client (not a trusted proxy): its own X-Forwarded-For is not believed.
    assert.match(await exchange(proxied, [`PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${proxied}\r\n${xff('6.6.6.6')}`]), /^HTTP\/1\.1 200 /);
    // The source is a trusted proxy (an nginx on the balancer's host, say): its entry is.
    assert.match(await exchange(proxied, [`PROXY TCP4 127.0.0.9 127.0.0.1 40000 ${proxied}\r\n${xff('6.6.6.6, 198.51.100.4')}`]), /^HTTP\/1\.1 200 /);
    for (const t0 = Date.now(); accessLines(c).length < 2 && Date.now() - t0 < 5000;) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(accessLines(c).map((l) => [l.remote_addr, l.peer_addr]), [['203.0.113.7', '127.0.0.1'], ['198.51.100.4', '127.0.0.1']]);
  });

  test('connections without a valid header are closed unanswered, and logged once for the interval', async () => {
    const mport = await freePort();
    const { c, proxied } = await serving(['--metrics-bind', `127.0.0.1:${mport}`]);
    for (let i = 0; i < 5; i++) assert.equal(await exchange(proxied, [REQ]), '');
    assert.equal(await exchange(proxied, ['PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n', REQ]), '');
    await c.waitForLine(/PROXY protocol: closed a connection/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(c.lines.filter((l) => l.includes('PROXY protocol: closed')).length, 1, c.output);
    const line = JSON.parse(c.lines.find((l) => l.includes('PROXY protocol: closed'))!) as Record<string, unknown>;
    assert.equal(line.reason, 'invalid');
    assert.equal(line.peer, '127.0.0.1');
    assert.match(String(line.msg), /no PROXY header/);
    assert.equal(accessLines(c).length, 0, 'no request reached the app');
    // Counted by reason on /metrics, from the worker's next heartbeat on.
    let text = '';
    for (const t0 = Date.now(); !text.includes('corral_proxy_protocol_rejected_total{reason="invalid"} 6') && Date.now() - t0 < 10_000;) {
      text = (await get({ port: mport, path: '/metrics' })).body;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(text, /corral_proxy_protocol_rejected_total\{reason="invalid"\} 6\n/);
    assert.match(text, /corral_proxy_protocol_rejected_total\{reason="peer_not_allowed"\} 0\n/);
  });

  test('a peer outside proxy-protocol-from is refused', async () => {
    const { c, proxied } = await serving(['--proxy-protocol-from', '127.0.0.1/32']);
    assert.equal(await exchange(proxied, [`PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${proxied}\r\n${REQ}`], '127.0.0.2'), '');
    const line = await c.waitForLine(/PROXY protocol: closed a connection/);
    assert.match(line, /"reason":"peer_not_allowed"/);
    assert.match(line, /"peer":"127\.0\.0\.2"/);
    assert.match(await exchange(proxied, [`PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${proxied}\r\n${REQ}`]), /^HTTP\/1\.1 200 /);
  });

  test('a header that does not arrive in time closes the connection', async () => {
    const { c, proxied } = await serving(['--headers-timeout', '1']);
    const t0 = Date.now();
    assert.equal(await exchange(proxied, ['PROXY TCP4 1.2.3.4']), '');
    assert.ok(Date.now() - t0 < 5000);
    assert.match(await c.waitForLine(/PROXY protocol: closed a connection/), /"reason":"timeout"/);
  });

  test('a proxy-protocol item that names no listener stops the start with a configuration error', async () => {
    const port = await freePort();
    const r = await runCli(['--bind', `127.0.0.1:${port}`, '--proxy-protocol', '127.0.0.1:1', app('hello.mjs')]);
    assert.equal(r.code, 78, r.output);
    assert.match(r.output, /proxy-protocol names 127\.0\.0\.1:1, which is not a listener/);
  });
});

const haproxy = spawnSync('haproxy', ['-v']).status === 0;

describe('behind a real HAProxy', { skip: haproxy ? false : 'haproxy is not installed' }, () => {
  test('send-proxy-v2 and send-proxy: the access line has the client address HAProxy saw; its health checks are not rejections', async () => {
    const { c, proxied } = await serving([]);
    const [v2Port, v1Port] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'corral-haproxy-'));
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, [
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 10s',
      '  timeout server 10s',
      `frontend v2\n  bind 127.0.0.1:${v2Port}\n  default_backend v2`,
      `backend v2\n  server app 127.0.0.1:${proxied} send-proxy-v2 check inter 200ms`,
      `frontend v1\n  bind 127.0.0.1:${v1Port}\n  default_backend v1`,
      `backend v1\n  server app 127.0.0.1:${proxied} send-proxy check inter 200ms`,
      '',
    ].join('\n'));
    const b = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    balancers.push(b);
    // The client connects to HAProxy from 127.0.0.3; HAProxy connects to corral from 127.0.0.1.
    let v2 = '';
    for (const t0 = Date.now(); !v2.startsWith('HTTP/1.1 200') && Date.now() - t0 < 10_000;) {
      await new Promise((r) => setTimeout(r, 200));
      v2 = await exchange(v2Port, [REQ], '127.0.0.3');
    }
    assert.match(v2, /^HTTP\/1\.1 200 /);
    assert.match(await exchange(v1Port, [REQ], '127.0.0.3'), /^HTTP\/1\.1 200 /);
    for (const t0 = Date.now(); accessLines(c).length < 2 && Date.now() - t0 < 5000;) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(accessLines(c).map((l) => l.remote_addr), ['127.0.0.3', '127.0.0.3']);
    assert.deepEqual(accessLines(c).map((l) => l.peer_addr), ['127.0.0.1', '127.0.0.1'], 'HAProxy is the peer');
    // A second of health checks every 200 ms, with the header (as HAProxy sends it on checks when the server has send-proxy).
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(c.lines.filter((l) => l.includes('PROXY protocol: closed')).length, 0, c.output);
  });
});
