import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { compileAccessFormat, type AccessRecord } from '../../src/logging/access-format.js';
import { ErrorLog } from '../../src/logging/error-log.js';
import { relayLines } from '../../src/logging/relay.js';
import type { Sink } from '../../src/logging/sink.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { logTargets } from '../../src/logging/destinations.js';

const rec = (over: Partial<AccessRecord> = {}): AccessRecord => ({
  time: new Date('2026-01-02T03:04:05.678Z'),
  method: 'GET',
  url: '/a?b="c"',
  httpVersion: '1.1',
  status: 200,
  bytes: 1234,
  durationMs: 12.34567,
  remoteAddr: '10.0.0.1',
  requestId: 'rid-1',
  pid: 42,
  worker: '1.2',
  rawHeaders: ['User-Agent', 'curl/8', 'Referer', 'https://r/', 'X-Forwarded-For', '1.2.3.4', 'Authorization', 'Bearer SECRET', 'x-tenant', 'acme'],
  res: { getHeader: (n: string) => ({ 'content-type': 'text/plain', 'set-cookie': 'SECRET' } as Record<string, string>)[n] },
  ...over,
});

describe('access log formats', () => {
  test('json has the documented fields and nothing secret', () => {
    const line = compileAccessFormat('json')(rec());
    assert.deepEqual(JSON.parse(line), {
      time: '2026-01-02T03:04:05.678Z', remote_addr: '10.0.0.1', forwarded_for: '1.2.3.4', method: 'GET', url: '/a?b="c"',
      protocol: 'HTTP/1.1', status: 200, bytes: 1234, duration_ms: 12.346, user_agent: 'curl/8', referer: 'https://r/',
      request_id: 'rid-1', pid: 42, worker: '1.2',
    });
    assert.doesNotMatch(line, /SECRET/);
  });

  test('json text is exactly what JSON.stringify gives for ordinary values, and parses back equal for escaped ones', () => {
    const ordinary = ['', 'plain', 'quote " and \\ backslash', 'tab\tnl\ncr\r\x00\x1f', 'caf\u00e9 \u{1f600} \u00a0\u00ff', 'lone \ud800 surrogate'];
    // JSON.stringify leaves these raw; the access log escapes them (\u007f, \u0085, \u2028...).
    const escaped = ['del \x7f', 'nel \u0085 csi \u009b[31m', 'c1 \u0080\u009f', '\u2028\u2029'];
    const json = compileAccessFormat('json');
    for (const v of [...ordinary, ...escaped]) {
      for (const over of [
        { url: v, method: v, requestId: v, worker: v },
        { remoteAddr: v || undefined, rawHeaders: ['user-agent', v, 'Referer', v, 'referer', v, 'X-Forwarded-For', v] },
        { remoteAddr: undefined, rawHeaders: [], durationMs: Number.NaN, bytes: 0, status: 499 },
      ] as Array<Partial<AccessRecord>>) {
        const r = rec(over);
        const header = (n: string) => {
          const values: string[] = [];
          for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i]!.toLowerCase() === n) values.push(r.rawHeaders[i + 1]!);
          return values.length === 0 ? undefined : values.join(', ');
        };
        const expected = JSON.stringify({
          time: r.time.toISOString(), remote_addr: r.remoteAddr, forwarded_for: header('x-forwarded-for'), method: r.method, url: r.url,
          protocol: `HTTP/${r.httpVersion}`, status: r.status, bytes: r.bytes, duration_ms: Math.round(r.durationMs * 1000) / 1000,
          user_agent: header('user-agent'), referer: header('referer'), request_id: r.requestId, pid: r.pid, worker: r.worker,
        });
        const line = json(r);
        if (ordinary.includes(v)) assert.equal(line, expected);
        else assert.deepEqual(JSON.parse(line), JSON.parse(expected));
        assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f\u2028\u2029]/, 'no raw control or separator character');
      }
    }
    // The time is cached per millisecond, never reused across milliseconds.
    assert.match(json(rec({ time: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 679)) })), /"time":"2026-01-02T03:04:05\.679Z"/);
  });

  test('every format escapes C0, DEL, C1 controls and U+2028/U+2029; nginx-style formats as \\xHH of the UTF-8 bytes', () => {
    const hostile = 'a\nb\rc\x1b[2Jd\x7fe\u0085f\u009b[31mg\u2028h\u2029i caf\u00e9';
    const r = rec({ url: '/' + hostile, rawHeaders: ['User-Agent', hostile, 'Referer', hostile, 'X-Tenant', hostile] });
    const line = compileAccessFormat('json')(r);
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f\u2028\u2029]/);
    assert.match(line, /"user_agent":"a\\nb\\rc\\u001b\[2Jd\\u007fe\\u0085f\\u009b\[31mg\\u2028h\\u2029i caf\u00e9"/);
    assert.equal((JSON.parse(line) as { user_agent: string }).user_agent, hostile);
    const nginx = 'a\\x0Ab\\x0Dc\\x1B[2Jd\\x7Fe\\xC2\\x85f\\xC2\\x9B[31mg\\xE2\\x80\\xA8h\\xE2\\x80\\xA9i caf\u00e9';
    assert.equal(compileAccessFormat('combined')(r), `10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET /${nginx} HTTP/1.1" 200 1234 "${nginx}" "${nginx}"`);
    assert.equal(compileAccessFormat('common')(r), `10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET /${nginx} HTTP/1.1" 200 1234`);
    // Templates also escape whitespace, so each value stays one field (U+00A0 as its UTF-8 bytes).
    assert.equal(compileAccessFormat('{url} {req.x-tenant} {user_agent}')(rec({ url: '/x\u00a0y z', rawHeaders: ['x-tenant', hostile, 'user-agent', 'ua'] })), `/x\\xC2\\xA0y\\x20z ${nginx.replace(' ', '\\x20')} ua`);
    for (const format of ['json', 'combined', 'common', '{url} {user_agent} {referer} {req.x-tenant} {forwarded_for}']) {
      assert.doesNotMatch(compileAccessFormat(format)(r), /[\x00-\x1f\x7f-\x9f\u2028\u2029]/, format);
    }
  });

  test('one rule in every format: U+0085, U+2028, ESC, DEL and NUL as the bytes of their UTF-8 encoding (\\uXXXX in JSON)', () => {
    const cases: Array<[string, string, string]> = [
      ['\u0085', '\\xC2\\x85', '\\u0085'],
      ['\u2028', '\\xE2\\x80\\xA8', '\\u2028'],
      ['\x1b', '\\x1B', '\\u001b'],
      ['\x7f', '\\x7F', '\\u007f'],
      ['\x00', '\\x00', '\\u0000'],
    ];
    for (const [c, text, json] of cases) {
      const r = rec({ url: `/a${c}b`, rawHeaders: ['User-Agent', `u${c}a`, 'Referer', `r${c}f`] });
      const where = `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
      assert.match(compileAccessFormat('json')(r), new RegExp(`"url":"/a${json.replace(/\\/g, '\\\\')}b"`), `json ${where}`);
      assert.equal((JSON.parse(compileAccessFormat('json')(r)) as { url: string }).url, `/a${c}b`, `json parses back (${where})`);
      assert.equal(compileAccessFormat('common')(r), `10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET /a${text}b HTTP/1.1" 200 1234`, `common ${where}`);
      assert.equal(compileAccessFormat('combined')(r), `10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET /a${text}b HTTP/1.1" 200 1234 "r${text}f" "u${text}a"`, `combined ${where}`);
      assert.equal(compileAccessFormat('{url} {user_agent}')(r), `/a${text}b u${text}a`, `template ${where}`);
      assert.equal(compileAccessFormat('pretty')(r), `GET /a${text}b 200 1.2 kB 12 ms`, `pretty ${where}`);
      assert.ok(compileAccessFormat('pretty-color')(r).startsWith(`GET /a${text}b \x1b[32m200`), `pretty-color ${where}`);
    }
  });

  test('request headers come from what the client sent: any case, repeated ones joined', () => {
    const r = rec({ rawHeaders: ['X-FORWARDED-FOR', '203.0.113.9', 'user-AGENT', 'ua/1', 'x-forwarded-for', '10.1.1.1', 'X-Tenant', 't1', 'x-tenant', 't2'] });
    const line = JSON.parse(compileAccessFormat('json')(r)) as Record<string, unknown>;
    assert.equal(line.forwarded_for, '203.0.113.9, 10.1.1.1');
    assert.equal(line.user_agent, 'ua/1');
    assert.equal(line.referer, undefined);
    assert.equal(compileAccessFormat('{req.X-Tenant}|{forwarded_for}|{referer}')(r), 't1,\\x20t2|203.0.113.9,\\x20' + '10.1.1.1|-');
  });

  test('a request line the parser refused: no protocol', () => {
    const r = rec({ method: '-', url: '\x16\x03\x01', httpVersion: '', status: 400, bytes: 0 });
    assert.equal((JSON.parse(compileAccessFormat('json')(r)) as Record<string, unknown>).protocol, undefined);
    assert.equal(compileAccessFormat('common')(r), '10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "- \\x16\\x03\\x01" 400 -');
    assert.equal(compileAccessFormat('{protocol} {status}')(r), '- 400');
  });

  test('common and combined, with nginx-style escaping', () => {
    assert.equal(compileAccessFormat('common')(rec()), '10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET /a?b=\\x22c\\x22 HTTP/1.1" 200 1234');
    assert.equal(compileAccessFormat('combined')(rec({ bytes: 0 })), '10.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET /a?b=\\x22c\\x22 HTTP/1.1" 200 - "https://r/" "curl/8"');
  });

  test('templates with named fields and headers', () => {
    const f = compileAccessFormat('{method} {url} {status} {duration}ms {req.x-tenant} {res.content-type} {req.missing} id={request_id} w={worker}');
    assert.equal(f(rec()), 'GET /a?b=\\x22c\\x22 200 12.346ms acme text/plain - id=rid-1 w=1.2');
  });

  test('unknown fields and secret headers are refused with the rule', () => {
    assert.throws(() => compileAccessFormat('{method} {nope}'), /unknown field \{nope\}; fields are \{time\}/);
    assert.throws(() => compileAccessFormat('{req.authorization}'), /the authorization header is never logged/);
    assert.throws(() => compileAccessFormat('{req.Cookie}'), /the cookie header is never logged/);
    assert.throws(() => compileAccessFormat('{res.set-cookie}'), /the set-cookie header is never logged/);
    assert.throws(() => compileAccessFormat('apache'), /must be json, combined, common, or a template/);
  });

  test('a bad format is a configuration error naming the setting', async () => {
    await assert.rejects(resolveConfig({ cli: { accessLogFormat: '{req.authorization}' }, env: {}, cwd: '/' }), /access-log-format \(from command line --access-log-format\): .*never logged/);
  });
});

class MemorySink {
  out = '';
  write(s: string) {
    this.out += s;
    return true;
  }
}

describe('error log rendering', () => {
  test('syslog priorities by level, one prefix per line', () => {
    const sink = new MemorySink();
    const log = new ErrorLog(sink as unknown as Sink, { pretty: false, syslogPrefix: true });
    for (const level of ['debug', 'info', 'warn', 'error', 'fatal']) log.line(JSON.stringify({ level, msg: level }) + '\n');
    assert.deepEqual(sink.out.split('\n').filter(Boolean).map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>', '<2>']);
  });

  test('captured output: stdout as info, stderr as error, attributed to the worker', () => {
    const sink = new MemorySink();
    const log = new ErrorLog(sink as unknown as Sink, { pretty: false, syslogPrefix: false });
    log.captured('stderr', 7, '2.1', 'oops');
    const rec = JSON.parse(sink.out) as Record<string, unknown>;
    assert.equal(rec.level, 'error');
    assert.equal(rec.pid, 7);
    assert.equal(rec.worker, '2.1');
    assert.equal(rec.msg, 'oops');
  });

  test('pretty lines are readable and keep the stack', () => {
    const sink = new MemorySink();
    const log = new ErrorLog(sink as unknown as Sink, { pretty: true, syslogPrefix: false });
    log.line(JSON.stringify({ level: 'error', time: '2026-01-01T10:11:12.345Z', pid: 9, role: 'worker', worker: '1.1', msg: 'bad', err: { stack: 'Error: bad\n    at x' } }));
    assert.match(sink.out, /^10:11:12\.345 (\x1b\[31m)?ERROR(\x1b\[0m)? +\[worker 1\.1 9\] bad\n {4}Error: bad\n {8}at x\n$/);
  });
});

describe('line relay', () => {
  test('hands on whole lines only, however the bytes were split', async () => {
    const src = new PassThrough();
    const got: string[] = [];
    let partial = '';
    relayLines(src, (lines) => {
      got.push(lines);
      return true;
    }, (rest) => (partial = rest));
    for (const piece of ['{"a":1}\n{"b"', ':2}\n{"c":3}', '\n', 'tail-without-newline']) src.write(piece);
    src.end();
    await new Promise((r) => setImmediate(r));
    assert.ok(got.every((chunk) => chunk.endsWith('\n')));
    assert.deepEqual(got.join('').split('\n').filter(Boolean), ['{"a":1}', '{"b":2}', '{"c":3}']);
    assert.equal(partial, 'tail-without-newline');
  });
});

describe('log destinations', () => {
  test('- is stdout/stderr; log-dir turns defaults into files; relative paths live in log-dir', async () => {
    const std = logTargets(await resolveConfig({ cli: {}, env: {}, cwd: '/srv' }), '/srv');
    assert.deepEqual(std, { access: { kind: 'std', fd: 1 }, error: { kind: 'std', fd: 2 } });
    const dir = logTargets(await resolveConfig({ cli: {}, env: { LOGS_DIRECTORY: '/var/log/app' }, cwd: '/srv' }), '/srv');
    assert.deepEqual(dir, { access: { kind: 'file', path: '/var/log/app/access.log' }, error: { kind: 'file', path: '/var/log/app/error.log' } });
    const explicit = logTargets(await resolveConfig({ cli: { accessLog: '-', errorLog: 'err.log' }, env: { LOGS_DIRECTORY: '/var/log/app' }, cwd: '/srv' }), '/srv');
    assert.deepEqual(explicit, { access: { kind: 'std', fd: 1 }, error: { kind: 'file', path: '/var/log/app/err.log' } });
    const off = logTargets(await resolveConfig({ cli: { accessLog: 'off' }, env: {}, cwd: '/srv' }), '/srv');
    assert.deepEqual(off.access, { kind: 'off' });
  });
});
