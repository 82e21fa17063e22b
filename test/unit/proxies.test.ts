import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { compileAccessFormat, type AccessRecord } from '../../src/logging/access-format.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { ProxyTrust, dropUntrusted, forwardedFor, sentHeaders } from '../../src/proxies/forwarded.js';

const xff = (v: string) => ['Host', 'x', 'X-Forwarded-For', v];
const fwd = (v: string) => ['Host', 'x', 'Forwarded', v];

describe('the client address behind trusted proxies', () => {
  const byDefault = new ProxyTrust(['loopback', 'unix']);

  test('a trusted peer: the walk stops at the first untrusted address, never the leftmost', () => {
    assert.equal(byDefault.client('127.0.0.1', xff('6.6.6.6, 203.0.113.7')), '203.0.113.7');
    const chain = new ProxyTrust(['127.0.0.1', '10.0.0.0/8']);
    assert.equal(chain.client('127.0.0.1', xff('6.6.6.6, 203.0.113.7, 10.1.2.3, 10.9.9.9')), '203.0.113.7');
    // Every hop trusted: the leftmost is all there is.
    assert.equal(chain.client('127.0.0.1', xff('10.1.2.3, 10.9.9.9')), '10.1.2.3');
    // Two fields of the header are one list, in order.
    assert.equal(chain.client('127.0.0.1', ['X-Forwarded-For', '6.6.6.6', 'x-forwarded-for', '203.0.113.9, 10.0.0.2']), '203.0.113.9');
  });

  test('an untrusted peer: its headers are ignored', () => {
    assert.equal(byDefault.client('192.0.2.5', xff('203.0.113.7')), '192.0.2.5');
    assert.equal(new ProxyTrust(['127.0.0.1/32']).client('127.0.0.2', xff('203.0.113.7')), '127.0.0.2');
    assert.equal(byDefault.client('192.0.2.5', fwd('for=203.0.113.7')), '192.0.2.5');
  });

  test('no forwarding header: the peer', () => {
    assert.equal(byDefault.client('127.0.0.1', ['Host', 'x']), '127.0.0.1');
    assert.equal(byDefault.client(undefined, []), undefined);
  });

  test('IPv6 and IPv4-mapped IPv6 peers and hops', () => {
    assert.equal(byDefault.client('::1', xff('2001:db8::7')), '2001:db8::7');
    assert.equal(byDefault.client('::ffff:127.0.0.1', xff('203.0.113.7')), '203.0.113.7');
    const v6 = new ProxyTrust(['fd00::/8']);
    assert.equal(v6.client('fd00::1', xff('2001:db8::7, fd00::2')), '2001:db8::7');
    assert.equal(v6.client('::1', xff('2001:db8::7')), '::1');
    // An IPv4 range matches mapped addresses.
    assert.equal(new ProxyTrust(['10.0.0.0/8']).client('::ffff:10.0.0.1', xff('203.0.113.7')), '203.0.113.7');
  });

  test('unix-socket peers are trusted only with `unix`', () => {
    assert.equal(byDefault.client(undefined, xff('203.0.113.7')), '203.0.113.7');
    assert.equal(new ProxyTrust(['loopback']).client(undefined, xff('203.0.113.7')), undefined);
  });

  test('`none` trusts nobody', () => {
    const none = new ProxyTrust(['none']);
    assert.equal(none.client('127.0.0.1', xff('203.0.113.7')), '127.0.0.1');
    assert.equal(none.client(undefined, xff('203.0.113.7')), undefined);
    assert.equal(none.trustsPeer('127.0.0.1'), false);
  });

  test('a value that is not an address ends the walk at the hop that wrote it', () => {
    assert.equal(byDefault.client('127.0.0.1', xff('203.0.113.7, garbage')), '127.0.0.1');
    const chain = new ProxyTrust(['127.0.0.1', '10.0.0.0/8']);
    assert.equal(chain.client('127.0.0.1', xff('203.0.113.7, unknown, 10.0.0.2')), '10.0.0.2');
  });

  test('Forwarded: for= values, quoted, bracketed IPv6, ports, unknown and obfuscated nodes', () => {
    assert.deepEqual(forwardedFor('for=192.0.2.60;proto=http;by=203.0.113.43'), ['192.0.2.60']);
    assert.deepEqual(forwardedFor('for="[2001:db8:cafe::17]:4711", for=198.51.100.17:80'), ['2001:db8:cafe::17', '198.51.100.17']);
    assert.deepEqual(forwardedFor('For="[2001:db8::1]"'), ['2001:db8::1']);
    assert.deepEqual(forwardedFor('for=unknown, for=_hidden, for=192.0.2.1'), ['unknown', 'unknown', '192.0.2.1']);
    // Malformed: an unterminated quote, an unbracketed IPv6 address, no for=, for= twice.
    assert.deepEqual(forwardedFor('for="192.0.2.1'), ['unknown']);
    assert.deepEqual(forwardedFor('for=2001:db8::1'), ['unknown']);
    assert.deepEqual(forwardedFor('proto=https'), ['unknown']);
    assert.deepEqual(forwardedFor('for=192.0.2.1;for=192.0.2.2'), ['unknown']);
    assert.deepEqual(forwardedFor('for="a,b";proto=http, for=192.0.2.3'), ['unknown', '192.0.2.3']);
    assert.equal(byDefault.client('127.0.0.1', fwd('for=6.6.6.6, for="[2001:db8::7]:80"')), '2001:db8::7');
    assert.equal(byDefault.client('127.0.0.1', fwd('for=6.6.6.6, for=_hidden')), '127.0.0.1');
  });

  test('X-Forwarded-For wins over Forwarded when both are sent', () => {
    assert.equal(byDefault.client('127.0.0.1', [...xff('203.0.113.7'), ...fwd('for=6.6.6.6')]), '203.0.113.7');
  });

  test('the setting: a clear config error for a bad entry, `none` alone', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'corral-proxies-'));
    assert.deepEqual((await resolveConfig({ cli: { forwardedAllowIps: ['10.0.0.0/8', 'unix'] }, env: {}, cwd })).config.forwardedAllowIps, ['10.0.0.0/8', 'unix']);
    assert.deepEqual((await resolveConfig({ cli: {}, env: { CORRAL_FORWARDED_ALLOW_IPS: '127.0.0.1/32, ::1' }, cwd })).config.forwardedAllowIps, ['127.0.0.1/32', '::1']);
    assert.deepEqual((await resolveConfig({ cli: {}, env: {}, cwd })).config.forwardedAllowIps, ['loopback', 'unix']);
    for (const bad of ['10.0.0.0/33', 'proxy.example', '300.1.1.1', 'none,loopback']) {
      await assert.rejects(resolveConfig({ cli: {}, env: { CORRAL_FORWARDED_ALLOW_IPS: bad }, cwd }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_CONFIG_VALUE', err.message);
        assert.match(err.message, /^forwarded-allow-ips \(from env CORRAL_FORWARDED_ALLOW_IPS\): .* is not valid/);
        return true;
      });
    }
  });
});

describe('forwarding headers an untrusted peer sent', () => {
  const trust = new ProxyTrust(['127.0.0.1/32']);
  const request = (raw: string[]): IncomingMessage => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
    return { headers, rawHeaders: raw } as unknown as IncomingMessage;
  };
  const forged = ['Host', 'x', 'X-Forwarded-For', '6.6.6.6', 'forwarded', 'for=6.6.6.6', 'X-Real-IP', '6.6.6.6', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil', 'Accept', '*/*'];

  test('are removed from headers and rawHeaders; the log still reads them as sent', () => {
    const req = request([...forged]);
    dropUntrusted(req, '127.0.0.2', trust);
    assert.deepEqual(req.headers, { host: 'x', accept: '*/*' });
    assert.deepEqual(req.rawHeaders, ['Host', 'x', 'Accept', '*/*']);
    assert.deepEqual(sentHeaders(req), forged);
  });

  test('from a trusted peer they are kept', () => {
    const req = request([...forged]);
    dropUntrusted(req, '127.0.0.1', trust);
    assert.deepEqual(req.rawHeaders, forged);
    assert.equal(req.headers['x-forwarded-for'], '6.6.6.6');
  });
});

describe('the access log: client and peer', () => {
  const rec = (over: Partial<AccessRecord>): AccessRecord => ({
    time: new Date('2026-01-02T03:04:05.678Z'), method: 'GET', url: '/', httpVersion: '1.1', status: 200, bytes: 2,
    durationMs: 1, remoteAddr: '127.0.0.1', requestId: 'r', pid: 1, worker: '1.1', rawHeaders: [], res: { getHeader: () => undefined }, ...over,
  });

  test('json has peer_addr only when it differs from remote_addr', () => {
    const json = compileAccessFormat('json');
    assert.equal(JSON.parse(json(rec({ remoteAddr: '203.0.113.7', peerAddr: '127.0.0.1' }))).peer_addr, '127.0.0.1');
    assert.equal(json(rec({ peerAddr: '127.0.0.1' })), json(rec({})));
    assert.ok(!json(rec({ peerAddr: '127.0.0.1' })).includes('peer_addr'));
  });

  test('common and templates: the client in remote_addr, {peer_addr} the peer', () => {
    assert.match(compileAccessFormat('common')(rec({ remoteAddr: '203.0.113.7', peerAddr: '127.0.0.1' })), /^203\.0\.113\.7 - - /);
    assert.equal(compileAccessFormat('{remote_addr} {peer_addr}')(rec({ remoteAddr: '203.0.113.7', peerAddr: '127.0.0.1' })), '203.0.113.7 127.0.0.1');
    assert.equal(compileAccessFormat('{peer_addr}')(rec({})), '127.0.0.1');
  });
});
