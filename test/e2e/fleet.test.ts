/**
 * A fleet: three hosts, each a real systemd in its own network namespace running corral
 * (installed by scripts/install, socket-activated, shutdown-delay 2 s), behind HAProxy
 * (active checks every 500 ms, fall 1) and then behind nginx (passive checks,
 * proxy_next_upstream, upstream keepalive), both configured from the shipped examples.
 * Under continuous, rate-limited load through the balancer, half keep-alive, half a new
 * connection per request:
 *   - a rolling `systemctl reload`, host after host: no request fails;
 *   - a rolling `systemctl restart`, host after host, each waiting until the balancer takes
 *     the host back: no request fails, and each stop held its shutdown delay;
 *   - one host cut off abruptly (its link down: silence, like a power cut): at most the
 *     requests in flight on it fail (the count is reported), the others carry on.
 * Every address is on veths between the sandboxes; see fleet-net.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { HAProxy, LB_URL, Nginx, type Balancer, type LbLog } from './fleet-lb.js';
import type { FleetLoad } from './fleet-load.js';
import { APP_PORT, FLEET_LOAD_JS, METRICS_PORT, useFleet, type Fleet, type Host } from './fleet-net.js';
import { cannotRun, CommandError, get, progress, setVersion, sleep, waitFor } from './harness.js';

const skip = cannotRun() ?? (existsSync('/usr/sbin/haproxy') ? undefined : 'needs haproxy (scripts/setup installs it)');
const DELAY_S = 2;
const RATE = 150;
const CONCURRENCY = 8;


let runs = 0;

/** Runs `op` under load through the balancer; the load stops once op is done and a little more was served. */
async function underLoad(f: Fleet, op: (progressNow: () => number) => Promise<void>): Promise<FleetLoad> {
  const tag = `load-${++runs}`;
  const stopFile = join(f.lb.dir, `${tag}.stop`);
  const progressFile = join(f.lb.dir, `${tag}.progress`);
  const args = [
    'node', FLEET_LOAD_JS, '--url', LB_URL, '--rate', String(RATE), '--concurrency', String(CONCURRENCY),
    '--requests', '40000', '--seconds', '120', '--stop-file', stopFile, '--progress-file', progressFile,
  ];
  const running = f.lb.spawn(args);
  // The client rewrites the file every 100 ms: a read may catch it empty, so keep the highest count seen.
  let seen = 0;
  const done = () => (seen = Math.max(seen, progress(progressFile)));
  try {
    await waitFor('the load to get going', () => done() > 100, { timeoutMs: 30_000 });
    await op(done);
    const at = done();
    await waitFor('more requests after the operation', () => done() > at + 100, { timeoutMs: 30_000 });
  } finally {
    writeFileSync(stopFile, '');
  }
  const r = await running.wait(150_000);
  if (r.code !== 0) throw new CommandError(args, r);
  return JSON.parse(r.stdout) as FleetLoad;
}

function report(t: TestContext, what: string, r: FleetLoad, log: LbLog): void {
  t.diagnostic(`${what}: ${r.ok}/${r.total} ok in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.keepAlive} keep-alive, ${r.newConnection} new connections); by host ${JSON.stringify(r.hosts)}`);
  t.diagnostic(`${what}: balancer logged ${log.requests} requests, statuses ${JSON.stringify(log.statuses)}, ${log.retried} passed to another server or retried`);
  if (r.failed) t.diagnostic(`${what}: failures ${JSON.stringify(r.errors)}: ${r.failures.slice(0, 10).map((x) => `${x.atMs} ms ${x.cause}`).join('; ')}`);
}

function assertNoFailure(r: FleetLoad, log: LbLog): void {
  assert.equal(r.failed, 0, `${JSON.stringify(r.errors)}\n${r.failures.map((x) => `${x.atMs} ms ${x.cause}: ${x.detail}`).join('\n')}\n${log.bad.join('\n')}`);
  assert.ok(r.total >= 300, `only ${r.total} requests`);
  for (const h of ['h1', 'h2', 'h3']) assert.ok((r.hosts[h] ?? 0) > 0, `${h} served nothing: ${JSON.stringify(r.hosts)}`);
}

async function journalCount(h: Host, pattern: string): Promise<number> {
  const text = (await h.sb.journal('corral@web.service', '-o', 'cat', '--grep', pattern)).trim();
  return text === '' ? 0 : text.split('\n').length;
}

/** The three operations, against one balancer. */
function scenarios(fleet: () => Fleet, make: (f: Fleet) => Balancer): void {
  let lb: Balancer;
  let version = 1;

  test('the balancer comes up with all three hosts serving', async () => {
    lb = make(fleet());
    await lb.start();
  });

  test('a rolling reload of the three hosts, one after another: no request fails', async (t) => {
    const f = fleet();
    version++;
    lb.takeLog();
    const r = await underLoad(f, async () => {
      for (const h of f.hosts) {
        await setVersion(h.sb, 'web', `${h.name}.v${version}`);
        await h.sb.ok(['systemctl', 'reload', 'corral@web.service'], { timeoutMs: 90_000 });
        await lb.waitServing(h);
        await sleep(300);
      }
    });
    const log = lb.takeLog();
    report(t, 'rolling reload', r, log);
    assertNoFailure(r, log);
    for (const h of f.hosts) {
      const { body } = await get(f.lb, { url: `http://${h.addr}:${APP_PORT}/` });
      assert.match(body, new RegExp(`^hello ${h.name}\\.v${version} `), `${h.name} serves the new version`);
    }
  });

  test(`a rolling restart with shutdown-delay ${DELAY_S} s, waiting for each host to be taken back: no request fails`, async (t) => {
    const f = fleet();
    const pattern = `shutdown delay: ${DELAY_S} s before draining`;
    const before = await Promise.all(f.hosts.map((h) => journalCount(h, pattern)));
    lb.takeLog();
    lb.takeDowns();
    const stops: number[] = [];
    const r = await underLoad(f, async () => {
      for (const h of f.hosts) {
        const t0 = Date.now();
        await h.sb.ok(['systemctl', 'restart', 'corral@web.service'], { timeoutMs: 90_000 });
        stops.push(Date.now() - t0);
        await lb.waitServing(h);
        await sleep(300);
      }
    });
    const log = lb.takeLog();
    const downs = lb.takeDowns();
    report(t, 'rolling restart', r, log);
    t.diagnostic(`restarts took ${stops.map((ms) => `${ms} ms`).join(', ')}; the balancer took out ${JSON.stringify(downs)}`);
    assertNoFailure(r, log);
    for (const [i, h] of f.hosts.entries()) {
      assert.equal(await journalCount(h, pattern), before[i]! + 1, `${h.name}: the stop began with the shutdown delay`);
      assert.ok(stops[i]! >= DELAY_S * 1000, `${h.name}: the restart took ${stops[i]} ms, less than the delay`);
    }
    // scripts/install made room for the delay in the stop budget, and told corral so.
    const h1 = f.hosts[0]!;
    assert.equal(await h1.sb.prop('corral@web.service', 'TimeoutStopUSec'), `${DELAY_S + 30 + 15}s`);
    assert.match(await h1.sb.prop('corral@web.service', 'Environment'), new RegExp(`CORRAL_STOP_BUDGET=${DELAY_S + 30 + 15}`));
    assert.equal(await journalCount(h1, 'do not fit the stop budget'), 0);
    if (lb.kind === 'haproxy') {
      // /readyz turned 503 at the stop, while the host still served: HAProxy took it out before the drain.
      assert.deepEqual([...new Set(downs)].sort(), ['h1', 'h2', 'h3'], 'HAProxy saw each host not ready during its restart');
    }
  });

  test('one host cut off abruptly: only requests in flight on it may fail, the others carry on', async (t) => {
    const f = fleet();
    const h3 = f.hosts[2]!;
    lb.takeLog();
    let atCut = 0;
    let afterCut = 0;
    let r: FleetLoad;
    try {
      r = await underLoad(f, async (progressNow) => {
        await sleep(1000);
        atCut = progressNow();
        // Its link goes down inside the host: from the balancer's side, silence (no RST, no FIN).
        await h3.sb.ok(['ip', 'link', 'set', h3.dev, 'down']);
        // The balancer's timeouts (connect 1 s, response 5 s) and checks run their course.
        await sleep(8000);
        // The other hosts carry on: requests keep completing. On a loaded machine every client
        // loop may still be waiting out a request sent to the cut host, so allow more time.
        await waitFor('the other hosts to carry on', () => progressNow() - atCut >= RATE * 2, { timeoutMs: 30_000 });
        afterCut = progressNow() - atCut;
      });
    } finally {
      // The host comes back for whatever follows.
      await h3.sb.ok(['ip', 'link', 'set', h3.dev, 'up']);
    }
    await lb.waitServing(h3, 60_000);
    const log = lb.takeLog();
    report(t, `${h3.name} cut off`, r, log);
    t.diagnostic(`${h3.name} cut off: ${r.failed} request(s) failed (in flight on it at most ${CONCURRENCY}); ${afterCut} requests completed after the cut`);
    assert.ok(r.failed <= CONCURRENCY, `${r.failed} failures: more than the requests that can be in flight (${CONCURRENCY})\n${JSON.stringify(r.failures)}`);
    assert.ok(afterCut >= RATE * 2, `the others carried on: only ${afterCut} requests after the cut`);
    assert.ok(r.failures.every((x) => x.atMs >= 0), 'no failure before the cut');
  });

  test('the balancer stops', async () => {
    await lb.stop();
  });
}

describe('a fleet of three corral hosts behind a load balancer', { skip, timeout: 600_000 }, () => {
  const fleet = useFleet({
    installArgs: ['--shutdown-delay', String(DELAY_S), '--metrics-port', String(METRICS_PORT), '--metrics-host', '0.0.0.0'],
  });

  describe('HAProxy, active checks on /readyz', () => scenarios(fleet, (f) => new HAProxy(f)));
  describe('nginx, passive checks (the deploy waits for /readyz)', () => scenarios(fleet, (f) => new Nginx(f)));
});
