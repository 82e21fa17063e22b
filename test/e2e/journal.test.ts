/**
 * The journal keeps every access line at full load: journald's per-unit rate limit (10,000
 * lines per 30 s by default) would otherwise drop most of them, silently but for one
 * "Suppressed" notice. The app is installed by scripts/install with the default (journal)
 * logging, so this is the shipped unit's LogRateLimitIntervalSec=/LogRateLimitBurst=.
 * Also measures what journald's CPU costs per line (docs/logging.md quotes it).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { cannotRun, installApp, sleep, startLoad, useSandbox, type Sandbox } from './harness.js';

const skip = cannotRun();
const UNIT = 'corral@jl.service';
const TAG = 'jrnl';
/**
 * Bounds of the load, whichever comes first. journald's default keeps at most 40,000 lines
 * of a unit per 30 s (10,000 times at most 4 for the free space): 50,000 requests within
 * 30 s cross it, which takes about 15 s on a busy 2-core machine.
 */
const REQUESTS = 50_000;
const SECONDS = 30;
const DEFAULT_LIMIT = 40_000;

/** Access lines of this load in the unit's journal: [all, distinct request ids]. */
async function countLines(sb: Sandbox): Promise<[number, number]> {
  const out = await sb.sh(`
    journalctl --no-pager -q -u ${UNIT} -o cat | grep -o '"request_id":"${TAG}-[0-9]*"' > /tmp/ids || true
    wc -l < /tmp/ids
    sort -u /tmp/ids | wc -l
  `, { timeoutMs: 60_000 });
  const [all, distinct] = out.trim().split('\n').map(Number);
  return [all!, distinct!];
}

async function cpuNs(sb: Sandbox, unit: string): Promise<number> {
  return Number(await sb.prop(unit, 'CPUUsageNSec'));
}

describe('journald keeps every access line', { skip, timeout: 300_000 }, () => {
  const sandbox = useSandbox(import.meta.url);

  before(async () => {
    const sb = sandbox();
    await installApp(sb, { name: 'jl', port: 8000, workers: 2 });
    await sb.ok(['systemctl', 'start', UNIT]);
  });

  test(`${REQUESTS} requests or ${SECONDS} s at full load: one journal line per request, nothing suppressed`, async (t) => {
    const sb = sandbox();
    const limits = `${await sb.prop(UNIT, 'LogRateLimitIntervalUSec')} / ${await sb.prop(UNIT, 'LogRateLimitBurst')}`;
    const journald0 = await cpuNs(sb, 'systemd-journald.service');
    const corral0 = await cpuNs(sb, UNIT);
    const load = startLoad(sb, {
      url: 'http://127.0.0.1:8000', keepAlive: true, concurrency: 16,
      requests: REQUESTS, seconds: SECONDS, tag: TAG, requestId: true,
    });
    const r = await load.result();
    assert.equal(r.failed, 0, `${r.failed} of ${r.total} requests failed: ${JSON.stringify(r.errors)}`);
    assert.ok(r.total >= 20_000, `only ${r.total} requests were made`);
    if (r.total <= DEFAULT_LIMIT) t.diagnostic(`only ${r.total} requests: journald's default limit may not have been crossed`);

    // journald reads the stream at its own pace: wait until the count stops growing.
    let counts: [number, number] = [0, 0];
    let still = 0;
    for (let i = 0; i < 60 && still < 2 && counts[0] < r.total; i++) {
      await sleep(1000);
      const next = await countLines(sb);
      still = next[0] === counts[0] ? still + 1 : 0;
      counts = next;
    }
    const journaldMs = (await cpuNs(sb, 'systemd-journald.service') - journald0) / 1e6;
    const corralMs = (await cpuNs(sb, UNIT) - corral0) / 1e6;
    const rate = Math.round(r.total / (r.elapsedMs / 1000));
    t.diagnostic(`unit rate limit ${limits}; ${r.total} requests in ${r.elapsedMs} ms (${rate}/s); ${counts[0]} lines in the journal`);
    t.diagnostic(`CPU during the load: journald ${Math.round(journaldMs)} ms (${(journaldMs * 1000 / r.total).toFixed(1)} µs per line), corral ${Math.round(corralMs)} ms (${(corralMs * 1000 / r.total).toFixed(1)} µs per request)`);

    assert.equal(counts[0], r.total, 'one access line per request in journalctl -u');
    assert.equal(counts[1], r.total, 'every request id once');
    const suppressed = await sb.exec(['journalctl', '--no-pager', '-q', '-b', '-o', 'cat', '--grep', 'Suppressed']);
    assert.equal(suppressed.stdout.trim(), '', 'journald suppressed nothing');
  });
});
