import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, describe, test } from 'node:test';
import { Corral, runCli, serveHello } from '../helpers/corral.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';

const started: Corral[] = [];
after(() => {
  for (const c of started) c.kill();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One sample of a metric without labels, or with exactly these labels. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

async function scrape(mport: number): Promise<string> {
  const r = await get({ port: mport, path: '/metrics' });
  assert.equal(r.status, 200);
  return r.body;
}

/** Polls /metrics until `ok(text)`, at most `timeoutMs`; returns the last text. */
async function until(mport: number, ok: (text: string) => boolean, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  let text = await scrape(mport);
  while (!ok(text) && Date.now() < end) {
    await sleep(200);
    text = await scrape(mport);
  }
  return text;
}

/**
 * Bounded load: `concurrency` keep-alive clients, each request blocking a worker's event
 * loop for 20 ms, until `stop()` or 30 s at most. Counts answers and failures.
 */
function blockingLoad(port: number, concurrency: number): { stop: () => Promise<{ ok: number; failed: number; errors: string[] }> } {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const result = { ok: 0, failed: 0, errors: [] as string[] };
  let running = true;
  const deadline = Date.now() + 30_000;
  const loop = async () => {
    while (running && Date.now() < deadline) {
      try {
        const r = await get({ port, path: '/block?ms=20', agent });
        if (r.status === 200) result.ok++;
        else result.failed++;
      } catch (err) {
        result.failed++;
        if (result.errors.length < 5) result.errors.push((err as Error).message);
      }
    }
  };
  const all = Promise.all(Array.from({ length: concurrency }, loop));
  return {
    stop: async () => {
      running = false;
      await all;
      agent.destroy();
      return result;
    },
  };
}

describe('workers as a range, with the real CLI', { timeout: 90_000 }, () => {
  test('--workers 1..3: sustained load adds workers, idle retires them back to one', async () => {
    const mport = await freePort();
    const { c, port } = await serveHello(started, 1, [
      '--workers', '1..3', '--scale-up-window', '1', '--scale-idle-timeout', '2', '--metrics-bind', `127.0.0.1:${mport}`,
    ]);
    let text = await scrape(mport);
    assert.deepEqual([sample(text, 'corral_workers_min'), sample(text, 'corral_workers_max'), sample(text, 'corral_workers_desired')], [1, 3, 1]);
    assert.equal((await c.workerPids()).length, 1, 'starts at the minimum');

    const busy = blockingLoad(port, 6);
    text = await until(mport, (t) => (sample(t, 'corral_workers', 'state="ready"') ?? 0) >= 2, 25_000);
    const during = await runCli(['status', String(c.pid)]);
    const served = await busy.stop();
    assert.ok((sample(text, 'corral_workers', 'state="ready"') ?? 0) >= 2, `a second worker serves under load:\n${c.output}`);
    assert.ok((sample(text, 'corral_scaling_decisions_total', 'direction="up",reason="busy"') ?? 0) + (sample(text, 'corral_scaling_decisions_total', 'direction="up",reason="queue"') ?? 0) >= 1);
    await c.waitForLine(/"msg":"scale up: workers 1 -> 2 of 1\.\.3 \((busy|queue|delay): /);
    assert.equal(served.failed, 0, `no request failed: ${served.errors.join('; ')}`);
    assert.ok(served.ok > 0);
    assert.equal(during.code, 0, during.output);
    assert.match(during.output, /^scaling: \d worker\(s\) in 1\.\.3: /m, 'corral status says why');

    // Quiet: after scale-idle-timeout (2 s) each, the extra workers drain back down to one.
    text = await until(mport, (t) => sample(t, 'corral_workers_desired') === 1 && sample(t, 'corral_workers', 'state="draining"') === 0, 30_000);
    assert.equal(sample(text, 'corral_workers_desired'), 1, `back at the minimum:\n${c.output}`);
    assert.ok((sample(text, 'corral_scaling_decisions_total', 'direction="down",reason="idle"') ?? 0) >= 1);
    assert.ok((sample(text, 'corral_worker_exits_total', 'reason="scale_down"') ?? 0) >= 1);
    await c.waitForLine(/"msg":"scale down: workers 2 -> 1 of 1\.\.3 \(idle: /);
    await c.waitForLine(/stopped \(scale-down: idle\)/);
    for (const end = Date.now() + 5000; (await c.workerPids()).length > 1 && Date.now() < end;) await sleep(100);
    assert.equal((await c.workerPids()).length, 1);
    c.signal('SIGQUIT');
    assert.deepEqual(await c.waitExit(), { code: 0, signal: null });
  });

  test('a bad range stops the start with exit 78 and one clear line', async () => {
    const out = await runCli(['--workers', '4..2', '--bind', '127.0.0.1:0', 'test/fixtures/apps/hello.mjs']);
    assert.equal(out.code, 78);
    assert.match(out.output, /E_CONFIG_VALUE: workers \(from command line --workers\): "4\.\.2" is not valid: the minimum \(4\) is above the maximum \(2\); write MIN\.\.MAX/);
  });
});
