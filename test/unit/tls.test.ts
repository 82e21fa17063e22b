import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CorralError } from '../../src/errors.js';
import type { MasterMessage } from '../../src/ipc/messages.js';
import type { Listener } from '../../src/listeners/acquire.js';
import type { Logger } from '../../src/logging/logger.js';
import { markTls, TlsKeeper } from '../../src/tls/keeper.js';
import { dateWarning, loadPair, tlsFiles } from '../../src/tls/pair.js';
import { SETTINGS, type ResolvedConfig } from '../../src/config/settings.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'corral-tls-unit-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function makePair(name: string, serial: number, days = 30): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${name}.test`, '-set_serial', String(serial),
  ], { stdio: 'ignore', timeout: 10_000 });
  return { cert, key };
}

const DAY = 86_400_000;

function code(err: unknown): string {
  assert.ok(err instanceof CorralError, String(err));
  return `${err.code}: ${err.message}`;
}

describe('the TLS pair', () => {
  test('a good pair: subject, serial, dates, chain', () => {
    const a = makePair('good', 0x1234);
    const p = loadPair({ cert: a.cert, key: a.key, clientCa: undefined });
    assert.equal(p.subject, 'CN=good.test');
    assert.equal(p.serial, '1234');
    assert.equal(p.chainLength, 1);
    assert.ok(p.notAfter.getTime() > Date.now() + 29 * DAY);
    assert.equal(dateWarning(p), undefined);
    assert.match(dateWarning(p, p.notAfter.getTime() - 3 * DAY) ?? '', /expires in 3\.0 day\(s\).*renew it/);
    assert.match(dateWarning(p, p.notBefore.getTime() - DAY) ?? '', /is not valid before/);
  });

  test('a key of another certificate is refused, naming both files', () => {
    const a = makePair('mis-a', 1);
    const b = makePair('mis-b', 2);
    assert.throws(() => loadPair({ cert: a.cert, key: b.key, clientCa: undefined }), (err) => {
      assert.match(code(err), /^E_TLS_CERT: tls-key .*mis-b\.key is not the key of the certificate in tls-cert .*mis-a\.crt \(CN=mis-a\.test, serial 01\)/);
      return true;
    });
  });

  test('an expired certificate is refused', () => {
    const a = makePair('old', 3, 1);
    assert.throws(() => loadPair({ cert: a.cert, key: a.key, clientCa: undefined }, Date.now() + 2 * DAY), (err) => {
      assert.match(code(err), /^E_TLS_CERT: .* expired at /);
      return true;
    });
  });

  test('missing, unreadable, not PEM, a broken chain, an encrypted key', () => {
    const a = makePair('files', 4);
    const refused = (files: Parameters<typeof loadPair>[0], re: RegExp) => assert.throws(() => loadPair(files), (err) => {
      assert.match(code(err), re);
      return true;
    });
    refused({ cert: join(dir, 'none.crt'), key: a.key, clientCa: undefined }, /^E_TLS_FILE: tls-cert .*none\.crt cannot be read: no such file/);
    refused({ cert: dir, key: a.key, clientCa: undefined }, /^E_TLS_FILE: tls-cert .* cannot be read: a directory/);
    const text = join(dir, 'text.crt');
    writeFileSync(text, 'hello\n');
    refused({ cert: text, key: a.key, clientCa: undefined }, /^E_TLS_FILE: tls-cert .*text\.crt is not a PEM file/);
    refused({ cert: a.cert, key: a.key, clientCa: text }, /^E_TLS_FILE: tls-client-ca .*text\.crt is not a PEM file/);
    const chain = join(dir, 'chain.crt');
    writeFileSync(chain, `${execFileSync('cat', [a.cert], { encoding: 'utf8' })}-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n`);
    refused({ cert: chain, key: a.key, clientCa: undefined }, /^E_TLS_CERT: tls-cert .*chain\.crt: certificate 2 of 2 cannot be parsed/);
    const encrypted = join(dir, 'enc.key');
    execFileSync('openssl', ['pkey', '-in', a.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted], { stdio: 'ignore' });
    refused({ cert: a.cert, key: encrypted, clientCa: undefined }, /^E_TLS_FILE: tls-key .*enc\.key holds no usable private key \(an encrypted key/);
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked.key');
      copyFileSync(a.key, locked);
      chmodSync(locked, 0);
      refused({ cert: a.cert, key: locked, clientCa: undefined }, /^E_TLS_FILE: tls-key .*locked\.key cannot be read: permission denied/);
    }
  });

  test('the settings: both files or neither; tls-bind and tls-client-ca need them; paths from the working directory', () => {
    const cfg = (o: Partial<ResolvedConfig>) => ({ tlsCert: undefined, tlsKey: undefined, tlsClientCa: undefined, tlsBind: [], ...o });
    assert.equal(tlsFiles(cfg({}), '/srv'), undefined);
    assert.deepEqual(tlsFiles(cfg({ tlsCert: 'c.pem', tlsKey: '/k.pem' }), '/srv'), { cert: '/srv/c.pem', key: '/k.pem', clientCa: undefined });
    assert.throws(() => tlsFiles(cfg({ tlsCert: 'c.pem' }), '/'), /tls-cert is set but tls-key is not/);
    assert.throws(() => tlsFiles(cfg({ tlsKey: 'k.pem' }), '/'), /tls-key is set but tls-cert is not/);
    assert.throws(() => tlsFiles(cfg({ tlsBind: ['127.0.0.1:8443'] }), '/'), /tls-bind is set but tls-cert and tls-key are not/);
    assert.throws(() => tlsFiles(cfg({ tlsClientCa: 'ca.pem' }), '/'), /tls-client-ca is set/);
    assert.throws(() => SETTINGS.tlsBind.type.parse('nowhere'), /has no port/);
  });
});

describe('which listeners serve TLS', () => {
  const own = (n: number): Listener[] => Array.from({ length: n }, (_, i) => ({ fd: 3 + i, label: `l${i}`, names: [], cleanup() {}, close() {} }));
  const flags = (ls: Listener[]) => ls.map((l) => l.tls);

  test('own binds: tls-bind\'s (listed after bind\'s), or every one when tls-bind is empty', () => {
    const a = own(3);
    markTls(a, true, 1);
    assert.deepEqual(flags(a), [false, false, true]);
    const b = own(2);
    markTls(b, true, 0);
    assert.deepEqual(flags(b), [true, true]);
    const c = own(2);
    markTls(c, false, 0);
    assert.deepEqual(flags(c), [false, false]);
  });

  test('systemd\'s sockets: those named tls when tls-bind is set, every one when not', () => {
    const passed = (): Listener[] => ['web', 'tls'].map((name, i) => ({ fd: 3 + i, label: `systemd:${name} (fd ${3 + i})`, name, names: [`systemd:${name}`], cleanup() {}, close() {} }));
    const a = passed();
    markTls(a, true, 1);
    assert.deepEqual(flags(a), [false, true]);
    const b = passed();
    markTls(b, true, 0);
    assert.deepEqual(flags(b), [true, true]);
  });
});

describe('swapping a pair in place', () => {
  function quietLog(lines: string[]): Logger {
    const at = (level: string) => (a: unknown, b?: unknown) => void lines.push(`${level} ${typeof a === 'string' ? a : String(b)}`);
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger;
  }

  test('a good new pair is sent to the workers; a broken one is refused and the current one stays', () => {
    const a = makePair('swap-a', 0xa);
    const b = makePair('swap-b', 0xb);
    const live = mkdtempSync(join(dir, 'live-'));
    const cert = join(live, 'cert.pem');
    const key = join(live, 'key.pem');
    copyFileSync(a.cert, cert);
    copyFileSync(a.key, key);
    const lines: string[] = [];
    const listeners: Listener[] = [{ fd: 3, label: '127.0.0.1:8443', tls: true, names: [], cleanup() {}, close() {} }];
    const keeper = new TlsKeeper(listeners, quietLog(lines), live);
    const cfg = { tlsCert: 'cert.pem', tlsKey: 'key.pem', tlsClientCa: undefined, tlsBind: [] } as unknown as ResolvedConfig;
    keeper.configure(cfg);
    const told: MasterMessage[] = [];
    keeper.start((m) => told.push(m));
    try {
      assert.equal(keeper.figures()?.serial, '0A');
      keeper.recheck();
      assert.equal(told.length, 0, 'unchanged files: nothing to tell');

      copyFileSync(b.cert, cert);
      copyFileSync(b.key, key);
      keeper.recheck();
      assert.equal(told.length, 1);
      assert.deepEqual(told[0], keeper.message());
      assert.equal(keeper.figures()?.serial, '0B');
      assert.ok(lines.some((l) => /^info TLS certificate swapped in place \(file change\): CN=swap-b\.test, serial 0B/.test(l)), lines.join('\n'));

      copyFileSync(a.key, key);
      keeper.recheck();
      assert.equal(told.length, 1, 'a broken pair is never sent');
      assert.equal(keeper.figures()?.serial, '0B');
      assert.deepEqual(keeper.figures()?.swaps, { ok: 1, refused: 1 });
      assert.ok(lines.some((l) => /^error TLS files changed but the new pair is refused; the current certificate \(CN=swap-b\.test, serial 0B.*is not the key of the certificate/.test(l)), lines.join('\n'));

      // At a HUP a broken pair is a configuration error: the reload fails.
      assert.throws(() => keeper.configure(cfg), /E_TLS_CERT|is not the key/);
      assert.throws(() => keeper.configure({ ...cfg, tlsCert: undefined, tlsKey: undefined }), /turning TLS off needs a restart/);
    } finally {
      keeper.close();
    }
  });
});
