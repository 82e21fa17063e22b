import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

/** Writes raw bytes on one connection and collects what comes back until it closes. */
function raw(port: number, chunks: Array<[string, number]>, maxMs = 8000): Promise<{ data: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    const t0 = Date.now();
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('close', () => resolve({ data, closedAfterMs: Date.now() - t0 }));
    s.on('error', () => {});
    let delay = 0;
    for (const [text, after] of chunks) {
      delay += after;
      setTimeout(() => s.writable && s.write(text), delay);
    }
    setTimeout(() => s.destroy(), maxMs);
  });
}

describe('HTTP limits', () => {
  test('keep-alive timeout, header size limit and request timeout are applied', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', '--keep-alive-timeout', '1', '--max-header-size', '2K', '--request-timeout', '2', '--headers-timeout', '2', app('hello.mjs')]);
    started.push(c);
    await c.waitReady();
    // an idle keep-alive connection is closed by the server after keep-alive-timeout
    const idle = await raw(port, [['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 0]]);
    assert.match(idle.data, /^HTTP\/1\.1 200/);
    assert.match(idle.data, /Keep-Alive: timeout=1/i);
    assert.ok(idle.closedAfterMs >= 900 && idle.closedAfterMs < 4000, `closed after ${idle.closedAfterMs} ms`);
    // headers above max-header-size are refused with 431
    const big = await get({ port, headers: { 'x-big': 'y'.repeat(4096) } }).catch((e: Error) => e);
    assert.ok(!(big instanceof Error) && big.status === 431, String(big instanceof Error ? big.message : big.status));
    // a request whose headers never complete (slowloris) is answered 408 at headers-timeout
    const slow = await raw(port, [['GET / HTTP/1.1\r\nHost: x\r\n', 0], ['X-Slow: 1\r\n', 500]]);
    assert.match(slow.data, /^HTTP\/1\.1 408/);
    assert.ok(slow.closedAfterMs >= 1900 && slow.closedAfterMs < 4500, `cut after ${slow.closedAfterMs} ms`);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('the defaults suit a proxy: keep-alive 75 s, above the 60 s idle timeout of nginx and cloud balancers', async () => {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '1', '--access-log', 'off', app('hello.mjs')]);
    started.push(c);
    await c.waitReady();
    const r = await raw(port, [['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 0]], 1500);
    assert.match(r.data, /Keep-Alive: timeout=75/i);
    c.signal('SIGQUIT');
    await c.waitExit();
  });
});
