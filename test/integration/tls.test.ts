import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

const started: Corral[] = [];
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'corral-tls-'));
});
after(() => {
  for (const c of started) c.kill();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Pair {
  cert: string;
  key: string;
  /** Hexadecimal, upper case, as Node's X509Certificate gives it. */
  serial: string;
}

/** A self-signed pair for localhost and 127.0.0.1 with the given serial, made by openssl. */
function makePair(name: string, serial: number, days = 30): Pair {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', String(days), '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-set_serial', String(serial),
  ], { stdio: 'ignore', timeout: 10_000 });
  return { cert, key, serial: new X509Certificate(readFileSync(cert)).serialNumber };
}

/** Puts a certificate and a key in place the way certbot's deploy does: each written aside, then renamed over the old one. */
function install(live: string, cert: string, key: string): void {
  mkdirSync(live, { recursive: true });
  copyFileSync(cert, join(live, '.cert.new'));
  copyFileSync(key, join(live, '.key.new'));
  renameSync(join(live, '.cert.new'), join(live, 'cert.pem'));
  renameSync(join(live, '.key.new'), join(live, 'key.pem'));
}

interface TlsReply {
  status: number;
  body: string;
  /** The serial of the certificate the server presented on this connection. */
  serial: string;
  reused: boolean;
}

/** One HTTPS request to 127.0.0.1 as `localhost`, trusting `ca`. */
function httpsGet(port: number, ca: string, opts: { agent?: Agent | false; path?: string; cert?: string; key?: string } = {}): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', servername: 'localhost', port, path: opts.path ?? '/', ca, agent: opts.agent ?? false,
      ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
    }, (res) => {
      let body = '';
      // Read now: a kept-alive socket goes back to the agent's pool before 'end'.
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function serveTls(live: string, extra: string[] = []): Promise<{ c: Corral; port: number; tport: number; mport: number }> {
  const [port, tport, mport] = [await freePort(), await freePort(), await freePort()];
  const c = new Corral([
    '--bind', `127.0.0.1:${port}`, '--tls-bind', `127.0.0.1:${tport}`,
    '--tls-cert', join(live, 'cert.pem'), '--tls-key', join(live, 'key.pem'),
    '--metrics-bind', `127.0.0.1:${mport}`, '--workers', '2', '--access-log', 'off', ...extra, app('hello.mjs'),
  ]);
  started.push(c);
  await c.waitReady();
  return { c, port, tport, mport };
}

describe('TLS listeners', { timeout: 90_000 }, () => {
  test('plain and TLS side by side: curl --cacert and Node\'s https client get 200; /metrics shows the expiry', async () => {
    const a = makePair('side-a', 0x1a);
    const live = join(dir, 'side');
    install(live, a.cert, a.key);
    const { c, port, tport, mport } = await serveTls(live);
    const ca = readFileSync(a.cert, 'utf8');
    const r = await httpsGet(tport, ca, { path: '/tls' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).path, '/tls');
    assert.equal(r.serial, a.serial);
    const curl = execFileSync('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', a.cert, '--resolve', `localhost:${tport}:127.0.0.1`, `https://localhost:${tport}/curl`], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(curl, '200');
    assert.equal((await get({ port, path: '/plain' })).status, 200, 'the plain listener still serves HTTP');
    const metrics = (await get({ port: mport, path: '/metrics' })).body;
    const notAfter = Math.round(new Date(new X509Certificate(readFileSync(a.cert)).validTo).getTime() / 1000);
    assert.ok(metrics.includes(`corral_tls_certificate_expiry_timestamp_seconds{listener="127.0.0.1:${tport}",subject="CN=localhost",serial="${a.serial}"} ${notAfter}\n`), metrics);
    assert.doesNotMatch(metrics, new RegExp(`corral_tls_certificate_expiry_timestamp_seconds\\{listener="127\\.0\\.0\\.1:${port}"`), 'the plain listener has no certificate');
    c.kill();
  });

  test('a new pair is swapped in place under load with no failed request; a broken one is refused while the old one serves', async () => {
    const a = makePair('swap-a', 0xa1);
    const b = makePair('swap-b', 0xb2);
    const other = makePair('swap-c', 0xc3);
    const live = join(dir, 'swap');
    install(live, a.cert, a.key);
    const { c, tport, mport } = await serveTls(live);
    const pids = await c.workerPids();
    // Both CAs are trusted: the client accepts either certificate and reports which it got.
    const ca = readFileSync(a.cert, 'utf8') + readFileSync(b.cert, 'utf8');
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 4, maxCachedSessions: 0 });
    // One connection opened before the swap, used again after it.
    const holder = new Agent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0 });
    const before = await httpsGet(tport, ca, { agent: holder });
    assert.equal(before.serial, a.serial);

    // A bounded load: keep-alive requests and new connections (at most 2000 per client), until
    // a dozen new connections began well after the swap was logged (or 15 s passed).
    let swappedAt = 0;
    let failures = 0;
    const errors: string[] = [];
    const seen: Array<{ at: number; serial: string; fresh: boolean }> = [];
    let stop = false;
    const client = async (fresh: boolean): Promise<void> => {
      for (let i = 0; i < 2000 && !stop; i++) {
        const at = Date.now();
        try {
          const r = await httpsGet(tport, ca, { agent: fresh ? false : keepAlive });
          if (r.status !== 200) throw new Error(`status ${r.status}`);
          seen.push({ at, serial: r.serial, fresh });
        } catch (err) {
          failures++;
          errors.push((err as Error).message);
        }
      }
    };
    const load = Promise.all([client(false), client(false), client(true), client(true)]);
    await sleep(300);
    const from = c.lines.length;
    const installedAt = Date.now();
    install(live, b.cert, b.key);
    try {
      await c.waitForLine(/TLS certificate swapped in place \(file change\)/, 10_000, from);
      swappedAt = Date.now();
      const enough = Date.now() + 15_000;
      while (seen.filter((s) => s.fresh && s.at > swappedAt + 200).length <= 10 && Date.now() < enough) await sleep(50);
    } finally {
      stop = true;
      await load;
    }
    assert.equal(failures, 0, `failed requests: ${errors.slice(0, 5).join('; ')}`);
    // Requests begun well after the master told the workers (`at` is when each began).
    const freshAfter = seen.filter((s) => s.fresh && s.at > swappedAt + 200);
    assert.ok(freshAfter.length > 10, `new connections after the swap: ${freshAfter.length}`);
    assert.ok(freshAfter.every((s) => s.serial === b.serial), 'every new handshake after the swap gets the new certificate');
    assert.ok(seen.length > 50, `requests under load: ${seen.length}`);
    assert.ok(seen.filter((s) => s.at < installedAt).every((s) => s.serial === a.serial));
    // A connection opened before the swap keeps its session and its certificate.
    const kept = await httpsGet(tport, ca, { agent: holder });
    assert.ok(kept.reused && kept.serial === a.serial, `a kept connection keeps the old certificate: ${JSON.stringify(kept)}`);
    keepAlive.destroy();
    holder.destroy();
    assert.deepEqual(await c.workerPids(), pids, 'no new generation: the same workers serve the new certificate');

    // A broken replacement: a certificate with the key of another pair.
    const from2 = c.lines.length;
    install(live, b.cert, other.key);
    const refused = await c.waitForLine(/new pair is refused/, 10_000, from2);
    assert.match(refused, /E_TLS_CERT/);
    assert.match(refused, /is not the key of the certificate/);
    assert.equal((await httpsGet(tport, ca)).serial, b.serial, 'the last good certificate keeps serving');
    const metrics = (await get({ port: mport, path: '/metrics' })).body;
    assert.match(metrics, /corral_tls_certificate_swaps_total\{result="ok"\} 1\n/);
    assert.match(metrics, /corral_tls_certificate_swaps_total\{result="refused"\} [1-9]/);
    assert.ok(metrics.includes(`serial="${b.serial}"`));

    // A HUP with the broken pair on disk fails the reload; the old generation serves on.
    const from3 = c.lines.length;
    c.signal('SIGHUP');
    await c.waitForLine(/reload #1 failed, previous generation keeps serving: configuration invalid: .*is not the key/, 10_000, from3);
    assert.equal((await httpsGet(tport, ca)).serial, b.serial);
    assert.deepEqual(await c.workerPids(), pids);

    // The pair made whole again: a HUP loads it, and the new generation serves it; new
    // connections (handshakes under way as the old workers drain) meet no failure meanwhile.
    install(live, other.cert, other.key);
    const ca3 = ca + readFileSync(other.cert, 'utf8');
    const from4 = c.lines.length;
    let reloading = true;
    let during = 0;
    const reloadErrors: string[] = [];
    const fresh = async (): Promise<void> => {
      for (let i = 0; i < 3000 && reloading; i++) {
        try {
          const r = await httpsGet(tport, ca3);
          if (r.status !== 200) throw new Error(`status ${r.status}`);
          during++;
        } catch (err) {
          reloadErrors.push((err as Error).message);
        }
      }
    };
    const reloadLoad = Promise.all([fresh(), fresh(), fresh()]);
    // A client that connects and never starts its handshake holds no drain for long.
    const silent = connect(tport, '127.0.0.1');
    silent.on('error', () => {});
    await new Promise((r) => silent.once('connect', r));
    c.signal('SIGHUP');
    try {
      await c.waitForLine(/reload #\d+ done/, 20_000, from4);
      // Until both workers of the old generation have drained and exited.
      const end = Date.now() + 15_000;
      while (c.lines.slice(from4).filter((l) => /\(gen 1 #\d\) stopped/.test(l)).length < 2 && Date.now() < end) await sleep(50);
    } finally {
      reloading = false;
      await reloadLoad;
      silent.destroy();
    }
    assert.equal(c.lines.slice(from4).filter((l) => /\(gen 1 #\d\) stopped/.test(l)).length, 2, 'both old workers drained well within graceful-timeout (30 s)');
    assert.deepEqual(reloadErrors, [], `failed requests during the reload (${during} succeeded)`);
    assert.ok(during > 20, `requests during the reload: ${during}`);
    assert.equal((await httpsGet(tport, ca3)).serial, other.serial);
    c.kill();
  });

  test('mutual TLS: tls-client-ca requires a client certificate it signed', async () => {
    const server = makePair('mtls-server', 0x51);
    const clientPair = makePair('mtls-client', 0x52);
    const stranger = makePair('mtls-stranger', 0x53);
    const live = join(dir, 'mtls');
    install(live, server.cert, server.key);
    const { c, tport } = await serveTls(live, ['--tls-client-ca', clientPair.cert]);
    const ca = readFileSync(server.cert, 'utf8');
    const ok = await httpsGet(tport, ca, { cert: readFileSync(clientPair.cert, 'utf8'), key: readFileSync(clientPair.key, 'utf8') });
    assert.equal(ok.status, 200);
    await assert.rejects(httpsGet(tport, ca), 'no client certificate: refused');
    await assert.rejects(httpsGet(tport, ca, { cert: readFileSync(stranger.cert, 'utf8'), key: readFileSync(stranger.key, 'utf8') }), 'a certificate another CA signed: refused');
    c.kill();
  });

  test('socket activation: with tls-bind set, the socket named tls serves TLS and the other plain HTTP', { skip: !existsSync('/usr/bin/systemd-socket-activate') && 'no systemd-socket-activate' }, async () => {
    const a = makePair('sd-a', 0x71);
    const [port, tport] = [await freePort(), await freePort()];
    const c = new Corral([
      '--workers', '1', '--access-log', 'off', '--tls-bind', '127.0.0.1:1', '--tls-cert', a.cert, '--tls-key', a.key, app('hello.mjs'),
    ], { wrap: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`, '-l', `127.0.0.1:${tport}`, '--fdname=web:tls'] });
    started.push(c);
    // systemd-socket-activate listens soon after it starts, and starts corral at the first
    // connection, which waits in the queue meanwhile.
    let first: TlsReply | undefined;
    for (const end = Date.now() + 15_000; !first && Date.now() < end;) {
      first = await httpsGet(tport, readFileSync(a.cert, 'utf8'), { path: '/first' }).catch(() => sleep(100).then(() => undefined));
    }
    await c.waitReady();
    assert.equal(first?.serial, a.serial);
    assert.match(c.output, /TLS on systemd:tls \(fd 4\)/);
    assert.equal((await get({ port, path: '/plain' })).status, 200);
    c.kill();
  });

  test('PROXY protocol on a TLS listener: the header comes before the handshake; the access line has the client and the balancer', async () => {
    const a = makePair('pp-a', 0x81);
    const live = join(dir, 'pp');
    install(live, a.cert, a.key);
    const [port, tport] = [await freePort(), await freePort()];
    const c = new Corral([
      '--bind', `127.0.0.1:${port}`, '--tls-bind', `127.0.0.1:${tport}`, '--proxy-protocol', `127.0.0.1:${tport}`,
      '--tls-cert', join(live, 'cert.pem'), '--tls-key', join(live, 'key.pem'), '--workers', '1', '--access-log', '-', app('hello.mjs'),
    ]);
    started.push(c);
    await c.waitReady();
    /**
     * Writes `header` on a new TCP connection, then speaks TLS over it and sends one request.
     * `together`: the header and the ClientHello leave in one segment (the kernel may split
     * or join them otherwise), as a balancer often sends them.
     */
    const viaProxy = (header: string, together: boolean) => new Promise<string>((resolve, reject) => {
      const raw = connect({ port: tport, host: '127.0.0.1' }, () => {
        if (together) {
          raw.cork();
          setTimeout(() => raw.uncork(), 50);
        }
        raw.write(header);
        const s = tlsConnect({ socket: raw, servername: 'localhost', ca: readFileSync(a.cert, 'utf8') }, () => {
          s.write('GET /pp-tls HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n');
        });
        let got = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (got += d));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
      raw.on('error', reject);
      raw.setTimeout(5000, () => raw.destroy(new Error('timed out')));
    });
    assert.match(await viaProxy(`PROXY TCP4 203.0.113.9 127.0.0.1 40000 ${tport}\r\n`, false), /^HTTP\/1\.1 200 /);
    assert.match(await viaProxy(`PROXY TCP4 203.0.113.9 127.0.0.1 40001 ${tport}\r\n`, true), /^HTTP\/1\.1 200 /);
    // A client that skips the header and starts the handshake is closed before any TLS byte is answered.
    await assert.rejects(httpsGet(tport, readFileSync(a.cert, 'utf8')));
    let line: Record<string, unknown> | undefined;
    for (const end = Date.now() + 5000; !line && Date.now() < end; await sleep(50)) {
      const ls = c.lines.filter((x) => x.includes('"url":"/pp-tls"'));
      if (ls.length === 2) line = JSON.parse(ls[1]!) as Record<string, unknown>;
    }
    assert.ok(line, c.output);
    // The header's source is the client; the forged X-Forwarded-For came from it, not from a trusted proxy.
    assert.equal(line.remote_addr, '203.0.113.9');
    assert.equal(line.peer_addr, '127.0.0.1', 'the balancer is the socket peer');
    assert.equal(line.forwarded_for, '6.6.6.6');
    assert.match(await c.waitForLine(/PROXY protocol: closed a connection/), /"reason":"invalid"/);
    assert.equal((await get({ port, path: '/plain' })).status, 200, 'the plain listener expects no header');
    c.kill();
  });

  test('a mismatched pair: corral check and serve exit 78', async () => {
    const a = makePair('bad-a', 0x61);
    const b = makePair('bad-b', 0x62);
    const port = await freePort();
    const args = ['--bind', `127.0.0.1:${port}`, '--tls-cert', a.cert, '--tls-key', b.key, app('hello.mjs')];
    const chk = await runCli(['check', ...args]);
    assert.equal(chk.code, 78, chk.output);
    assert.match(chk.output, /FAIL {2}tls: tls-key .* is not the key of the certificate/);
    const serve = await runCli(['serve', ...args]);
    assert.equal(serve.code, 78, serve.output);
    assert.match(serve.output, /E_TLS_CERT/);
    const missing = await runCli(['check', '--bind', `127.0.0.1:${port}`, '--tls-cert', join(dir, 'nope.pem'), '--tls-key', b.key, app('hello.mjs')]);
    assert.equal(missing.code, 78);
    assert.match(missing.output, /tls-cert .*nope\.pem cannot be read: no such file/);
    const half = await runCli(['check', '--bind', `127.0.0.1:${port}`, '--tls-cert', a.cert, app('hello.mjs')]);
    assert.equal(half.code, 78);
    assert.match(half.output, /tls-cert is set but tls-key is not/);
  });
});
