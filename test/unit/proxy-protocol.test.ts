import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseProxyHeader, V1_MAX, type ProxyParse } from '../../src/listeners/proxy-protocol.js';
import { proxyProtocolListeners, type Listener } from '../../src/listeners/acquire.js';
import { CorralError } from '../../src/errors.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const REQ = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n');

/** A v2 header: version/command byte, family/protocol byte, then the address block and TLVs. */
function v2(verCmd: number, fam: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([SIG, Buffer.from([verCmd, fam]), len, body]);
}

function inet4(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.from([type, 0, 0]);
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

function done(r: ProxyParse): Extract<ProxyParse, { state: 'done' }>['header'] {
  assert.equal(r.state, 'done', JSON.stringify(r));
  return (r as Extract<ProxyParse, { state: 'done' }>).header;
}

function invalid(r: ProxyParse, re: RegExp): void {
  assert.equal(r.state, 'invalid', JSON.stringify(r));
  assert.match((r as { reason: string }).reason, re);
}

/** Every strict prefix of a complete header is partial: the header may arrive one byte at a time. */
function partialUntilLast(header: Buffer): void {
  for (let n = 0; n < header.length; n++) assert.deepEqual(parseProxyHeader(header.subarray(0, n)), { state: 'partial' }, `prefix of ${n} bytes`);
}

describe('PROXY protocol v1', () => {
  test('the spec\'s TCP4 and TCP6 examples', () => {
    const h4 = done(parseProxyHeader(Buffer.from('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n')));
    assert.deepEqual(h4, { length: 56, version: 1, source: { address: '255.255.255.255', port: 65535 } });
    const line6 = 'PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'.replace(/ffff:f\.\.\.f:ffff/g, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    const h6 = done(parseProxyHeader(Buffer.from(line6)));
    assert.deepEqual(h6.source, { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 65535 });
    assert.equal(h6.length, 104);
  });

  test('UNKNOWN, with or without addresses, keeps the socket\'s address', () => {
    assert.deepEqual(done(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))), { length: 15, version: 1 });
    // The spec's worst case: 107 bytes exactly.
    const ff = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const longest = `PROXY UNKNOWN ${ff} ${ff} 65535 65535\r\n`;
    assert.equal(longest.length, V1_MAX);
    assert.deepEqual(done(parseProxyHeader(Buffer.from(longest))), { length: V1_MAX, version: 1 });
  });

  test('bytes after the header are left where they are', () => {
    const head = Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n');
    const h = done(parseProxyHeader(Buffer.concat([head, REQ])));
    assert.equal(h.length, head.length);
    assert.deepEqual(Buffer.concat([head, REQ]).subarray(h.length), REQ);
  });

  test('truncated at every byte: partial, never a guess', () => {
    partialUntilLast(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'));
  });

  test('a line longer than 107 bytes is refused, even before its end arrives', () => {
    invalid(parseProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}`)), /longer than 107/);
    invalid(parseProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`)), /longer than 107/);
  });

  test('malformed lines', () => {
    const bad: Array<[string, RegExp]> = [
      ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /protocol "TCP5"/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /single spaces/],
      ['PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', /single spaces/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n', /single spaces/],
      ['PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n', /IPv4/],
      ['PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n', /IPv6/],
      ['PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', /IPv4/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /port/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n', /port/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', /port/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /CRLF/],
      ['PROXY TCP4 1.2.3.4\r5.6.7.8 1 2', /CRLF/],
      ['proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /no PROXY header/],
      ['PROXYTCP4', /no PROXY header/],
    ];
    for (const [line, re] of bad) invalid(parseProxyHeader(Buffer.from(line)), re);
  });
});

describe('PROXY protocol v2', () => {
  test('PROXY over AF_INET, stream', () => {
    const h = done(parseProxyHeader(v2(0x21, 0x11, inet4([192, 0, 2, 9], [10, 0, 0, 1], 51234, 80))));
    assert.deepEqual(h, { length: 28, version: 2, source: { address: '192.0.2.9', port: 51234 } });
  });

  test('PROXY over AF_INET6, in Node\'s short form', () => {
    const body = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(body, 0);
    Buffer.from('20010db8000000000000000000000002', 'hex').copy(body, 16);
    body.writeUInt16BE(4433, 32);
    body.writeUInt16BE(443, 34);
    assert.deepEqual(done(parseProxyHeader(v2(0x21, 0x21, body))).source, { address: '2001:db8::1', port: 4433 });
    Buffer.from('00000000000000000000ffffc0000201', 'hex').copy(body, 0);
    assert.equal(done(parseProxyHeader(v2(0x21, 0x21, body))).source?.address, '::ffff:192.0.2.1');
    Buffer.from('20010db8000100000000000100000001', 'hex').copy(body, 0);
    assert.equal(done(parseProxyHeader(v2(0x21, 0x21, body))).source?.address, '2001:db8:1::1:0:1');
  });

  test('LOCAL (the balancer\'s health check): the socket\'s address, whatever the block holds', () => {
    assert.deepEqual(done(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0)))), { length: 16, version: 2 });
    assert.deepEqual(done(parseProxyHeader(v2(0x20, 0x11, inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)))), { length: 28, version: 2 });
  });

  test('UNSPEC and AF_UNIX carry no IP address: the socket\'s stands', () => {
    assert.deepEqual(done(parseProxyHeader(v2(0x21, 0x00, Buffer.alloc(0)))), { length: 16, version: 2 });
    const unix = Buffer.alloc(216);
    unix.write('/run/client.sock', 0);
    assert.deepEqual(done(parseProxyHeader(v2(0x21, 0x31, unix))), { length: 232, version: 2 });
  });

  test('TLVs are skipped, and what follows the header is left in place', () => {
    const body = Buffer.concat([inet4([203, 0, 113, 5], [10, 0, 0, 1], 1000, 80), tlv(0x01, Buffer.from('h2')), tlv(0x04, Buffer.alloc(0)), tlv(0x20, Buffer.alloc(40))]);
    const header = v2(0x21, 0x11, body);
    const h = done(parseProxyHeader(Buffer.concat([header, REQ])));
    assert.equal(h.length, header.length);
    assert.equal(h.source?.address, '203.0.113.5');
    assert.deepEqual(Buffer.concat([header, REQ]).subarray(h.length), REQ);
  });

  test('truncated at every byte: partial', () => {
    partialUntilLast(v2(0x21, 0x11, Buffer.concat([inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlv(0x05, Buffer.from('id'))])));
  });

  test('wrong signature, version, command, family or protocol is refused at the byte that shows it', () => {
    invalid(parseProxyHeader(Buffer.from('\r\n\r\nGET')), /no PROXY header/);
    invalid(parseProxyHeader(Buffer.concat([SIG.subarray(0, 11), Buffer.from('X')])), /no PROXY header/);
    invalid(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x11])])), /version 1/);
    invalid(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x31])])), /version 3/);
    invalid(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x22])])), /command 2/);
    invalid(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x21, 0x41])])), /family/);
    invalid(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x21, 0x13])])), /family or protocol/);
  });

  test('a length too short for the family, or TLVs that overrun, are refused', () => {
    invalid(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(8))), /too short/);
    invalid(parseProxyHeader(v2(0x21, 0x21, Buffer.alloc(12))), /too short/);
    invalid(parseProxyHeader(v2(0x21, 0x31, Buffer.alloc(108))), /too short/);
    // Judged from the 16 fixed bytes, before the block arrives.
    invalid(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(8)).subarray(0, 16)), /too short/);
    const addrs = inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    invalid(parseProxyHeader(v2(0x21, 0x11, Buffer.concat([addrs, Buffer.from([0x01, 0x00])]))), /truncated TLV/);
    invalid(parseProxyHeader(v2(0x21, 0x11, Buffer.concat([addrs, Buffer.from([0x01, 0x00, 0x09, 0x41])]))), /TLV longer/);
  });

  test('anything else is no header at all', () => {
    invalid(parseProxyHeader(REQ), /no PROXY header/);
    invalid(parseProxyHeader(Buffer.from([0x16, 0x03, 0x01])), /no PROXY header/);
    assert.deepEqual(parseProxyHeader(Buffer.alloc(0)), { state: 'partial' });
  });
});

describe('proxy-protocol listeners', () => {
  const l = (names: string[]): Listener => ({ fd: 3, label: names[0]!, names, cleanup() {}, close() {} });
  const listeners = [l(['127.0.0.1:8000']), l(['unix:/run/app.sock']), l(['systemd:web', 'fd://5'])];

  test('named as --bind takes them, or systemd:NAME and fd://N', () => {
    assert.deepEqual(proxyProtocolListeners([], listeners), [false, false, false]);
    assert.deepEqual(proxyProtocolListeners(['127.0.0.1:8000'], listeners), [true, false, false]);
    assert.deepEqual(proxyProtocolListeners(['unix:/run/app.sock', 'systemd:web'], listeners), [false, true, true]);
    assert.deepEqual(proxyProtocolListeners(['fd://5'], listeners), [false, false, true]);
    assert.deepEqual(proxyProtocolListeners(['8000'], [l(['0.0.0.0:8000'])]), [true]);
  });

  test('an item that names no listener is a configuration error', () => {
    assert.throws(() => proxyProtocolListeners(['127.0.0.1:8001'], listeners), (err: unknown) => err instanceof CorralError && err.code === 'E_CONFIG_VALUE' && /127\.0\.0\.1:8001/.test(err.message));
    assert.throws(() => proxyProtocolListeners(['systemd:api'], listeners), /systemd:api/);
  });
});
