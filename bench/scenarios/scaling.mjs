// Load-following workers: a quiet period, a burst, a quiet period again, served by corral
// with a fixed minimum of workers, a fixed maximum, and the range between them. Each
// request costs CPU (apps/busy.mjs), so more workers (up to the cores) answer a burst
// sooner. Measured per run: the burst's p99 (wrk), requests failed over the whole run
// (the burst's and a trickle's), the mean RSS summed over every corral process over the
// whole run, and, for the range, the time from the burst's start to the first extra
// worker serving and to all of them serving (read from /metrics every 100 ms).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BENCH_DIR, Contender, CORRAL_CLI, launchContender } from '../lib/contenders.mjs';
import { freePort } from '../lib/ports.mjs';
import { rssBytes, sleep } from '../lib/proc.mjs';
import { alternate, metric, target, ratioOf } from '../lib/scenario.mjs';
import { runWrk } from '../lib/wrk.mjs';

const BUSY_APP = path.join(BENCH_DIR, 'apps', 'busy.mjs');
const MIN = 1;
const MAX = 3;
// The range's windows: a burst must last 1 s to add workers; one fewer must have been
// enough for 10 s before one is retired (the defaults are 2 s and 30 s).
const RANGE_ARGS = ['--scale-up-window', '1', '--scale-idle-timeout', '10'];
const VARIANTS = [['corral', `${MIN}..${MAX}`], ['fixed-min', String(MIN)], ['fixed-max', String(MAX)]];
const MiB = 2 ** 20;

export const description = `A quiet period with a trickle (10 req/s), a burst (wrk -c 16 on keep-alive connections, `
  + `each request under 1 ms of CPU and 3 ms of a blocked event loop), then quiet again; corral with --workers ${MIN}..${MAX} (${RANGE_ARGS.join(' ')}) `
  + `against fixed ${MIN} and fixed ${MAX}. RSS is summed over the master and every worker, sampled every 500 ms over the whole run.`;

class CorralVariant extends Contender {
  constructor(name, opts, workers, mport) {
    super(name, opts);
    this.range = workers;
    this.mport = mport;
  }

  async launch() {
    if (!fs.existsSync(CORRAL_CLI)) throw new Error(`corral is not built: ${CORRAL_CLI} is missing (run \`npm run build\`)`);
    const args = [CORRAL_CLI, '--bind', `127.0.0.1:${this.port}`, '--workers', this.range, '--access-log', 'off',
      '--metrics-bind', `127.0.0.1:${this.mport}`, ...(this.range.includes('..') ? RANGE_ARGS : []), BUSY_APP];
    this.child = this.spawnLogged(process.execPath, args, this.appEnv());
  }
}

function getText(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function readyWorkers(mport) {
  const { body } = await getText(mport, '/metrics');
  const m = /^corral_workers\{state="ready"\} (\d+)$/m.exec(body);
  return m ? Number(m[1]) : 0;
}

// One request every `everyMs` until stopped: the quiet periods' traffic. Counts failures.
function trickle(port, everyMs) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out = { ok: 0, failed: 0 };
  let on = true;
  const done = (async () => {
    while (on) {
      try {
        const r = await getText(port, '/').catch((err) => ({ status: 0, err }));
        if (r.status === 200) out.ok++;
        else out.failed++;
      } finally {
        await sleep(everyMs);
      }
    }
  })();
  return { stop: async () => { on = false; await done; agent.destroy(); return out; } };
}

// One more keep-alive client beside wrk, one request at a time, each answer's latency kept
// with its time from the burst's start: wrk gives percentiles of the whole burst only, the
// probe gives those of its part after the range has grown (the steady state).
function probe(port, from) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const samples = [];
  let on = true;
  const done = (async () => {
    while (on) {
      const t = performance.now();
      const r = await new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 10_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', () => resolve(0));
      });
      if (r === 200) samples.push([t - from, performance.now() - t]);
    }
  })();
  return { stop: async () => { on = false; await done; agent.destroy(); return samples; } };
}

function p99Of(samples, afterMs) {
  const xs = samples.filter(([t]) => t >= afterMs).map(([, ms]) => ms).sort((a, b) => a - b);
  return xs.length ? xs[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))] : null;
}

// RSS of the master and its descendants every `everyMs`; the mean in MiB when stopped.
function rssSampler(c, everyMs) {
  const samples = [];
  const timer = setInterval(() => {
    const pids = c.serverPids();
    samples.push(pids.reduce((n, pid) => n + (rssBytes(pid) ?? 0), 0));
  }, everyMs);
  return () => {
    clearInterval(timer);
    return samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length / MiB : null;
  };
}

// Polls the ready count every 100 ms from the burst's start: when the first extra worker
// serves, and when all of them do.
function scaleWatch(c, from) {
  const out = { firstMs: null, allMs: null, peak: 0 };
  let on = true;
  const done = (async () => {
    while (on) {
      const n = await readyWorkers(c.mport).catch(() => 0);
      out.peak = Math.max(out.peak, n);
      const t = performance.now() - from;
      if (n > MIN && out.firstMs === null) out.firstMs = t;
      if (n >= MAX && out.allMs === null) out.allMs = t;
      await sleep(100);
    }
  })();
  return { stop: async () => { on = false; await done; return out; } };
}

async function once(ctx, c, phases) {
  // Every run starts from the minimum for the range: wait until it has come back down.
  for (const end = performance.now() + 60_000; c.range.includes('..') && performance.now() < end;) {
    if (await readyWorkers(c.mport) <= MIN) break;
    await sleep(200);
  }
  const meanRss = rssSampler(c, 500);
  const quiet = trickle(c.port, 100);
  await sleep(phases.quietS * 1000);
  const t0 = performance.now();
  const watch = scaleWatch(c, t0);
  const probing = probe(c.port, t0);
  const burst = await runWrk({ url: c.url, connections: 16, threads: 1, durationS: phases.burstS, timeoutS: 10 });
  const probed = await probing.stop();
  const scaled = await watch.stop();
  const steadyP99Ms = p99Of(probed, phases.steadyAfterS * 1000);
  await sleep(phases.afterS * 1000);
  const t = await quiet.stop();
  const rssMiB = meanRss();
  const failed = burst.errors + t.failed;
  ctx.log(`  ${c.name}: burst p99 ${burst.p99Ms?.toFixed(1)} ms (after ${phases.steadyAfterS} s: ${steadyP99Ms?.toFixed(1)} ms), ${burst.rps.toFixed(0)} req/s; failed ${failed}; mean RSS ${rssMiB?.toFixed(1)} MiB`
    + (c.range.includes('..') ? `; first extra worker serving after ${scaled.firstMs?.toFixed(0)} ms, all after ${scaled.allMs?.toFixed(0)} ms (peak ${scaled.peak})` : ''));
  if (failed > 0) ctx.fail(`${c.name}: ${failed} request(s) failed (${JSON.stringify(burst.socketErrors)}, non-2xx ${burst.non2xx}, trickle ${t.failed})`);
  return { p99Ms: burst.p99Ms, steadyP99Ms, probeRequests: probed.length, p50Ms: burst.p50Ms, rps: burst.rps, failed, rssMiB, firstExtraMs: scaled.firstMs, allExtraMs: scaled.allMs, peak: scaled.peak };
}

export default async function scaling(ctx) {
  // The burst lasts 3 x --duration (default 10: 30 s); the quiet periods stay as they are.
  const phases = ctx.smoke ? { quietS: 2, burstS: 4, afterS: 4, steadyAfterS: 2 } : { quietS: 20, burstS: 3 * ctx.durationS, afterS: 70, steadyAfterS: 10 };
  const running = new Map();
  let samples = {};
  try {
    for (const [name, workers] of VARIANTS) {
      const opts = { workers: MAX, tmp: ctx.tmp, port: await freePort('127.0.0.1') };
      try {
        ctx.log(`starting ${name} (--workers ${workers})`);
        running.set(name, await launchContender(new CorralVariant(name, opts, workers, await freePort('127.0.0.1'))));
      } catch (err) {
        ctx.fail(`${name} failed to start: ${err.message}`);
      }
    }
    samples = await alternate(ctx, running, (c) => once(ctx, c, phases));
  } finally {
    for (const c of running.values()) await c.stop().catch((err) => ctx.fail(`${c.name} failed to stop: ${err.message}`));
  }
  const p99 = metric(`burst p99 latency (${phases.burstS} s burst)`, samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.p99Ms });
  const steady = metric(`burst p99 after its first ${phases.steadyAfterS} s (a probe client beside wrk)`, samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.steadyP99Ms });
  const p50 = metric('burst median latency', samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.p50Ms });
  const rps = metric('burst throughput', samples, { unit: 'req/s', get: (s) => s.rps });
  const rss = metric(`mean RSS over the run (${phases.quietS + phases.burstS + phases.afterS} s), master + workers`, samples, { unit: 'MiB', higherIsBetter: false, get: (s) => s.rssMiB });
  const failed = metric('requests failed over the run', samples, { unit: 'requests', higherIsBetter: false, get: (s) => s.failed });
  const range = Object.fromEntries(Object.entries(samples).filter(([n]) => n === 'corral'));
  const first = metric('burst start to the first extra worker serving', range, { unit: 'ms', higherIsBetter: false, get: (s) => s.firstExtraMs });
  const all = metric(`burst start to all ${MAX} workers serving`, range, { unit: 'ms', higherIsBetter: false, get: (s) => s.allExtraMs });
  const corral = samples.corral || [];
  const failedAll = corral.length && corral.every(Boolean) ? Object.values(samples).flat().reduce((n, s) => n + (s ? s.failed : 0), 0) : null;
  return {
    raw: samples,
    params: { ...phases, min: MIN, max: MAX, rangeArgs: RANGE_ARGS.join(' '), connections: 16, runs: ctx.runs },
    metrics: [p99, steady, p50, rps, rss, failed, first, all],
    targets: [
      target(`burst p99, --workers ${MIN}..${MAX} / fixed ${MAX}`, ratioOf(p99, 'fixed-max'), '<=', 1.2, 'x'),
      target(`burst p99 after its first ${phases.steadyAfterS} s, --workers ${MIN}..${MAX} / fixed ${MAX}`, ratioOf(steady, 'fixed-max'), '<=', 1.2, 'x'),
      target(`mean RSS over the run, --workers ${MIN}..${MAX} / fixed ${MIN}`, ratioOf(rss, 'fixed-min'), '<=', 1.2, 'x'),
      target('requests failed, every variant, all runs', failedAll, '<=', 0),
    ],
  };
}
