// Launch to first 200: the time from spawning the server's command to the
// first successful answer, probed every few milliseconds on fresh
// connections. Each run starts and stops a fresh server.
import { CONTENDERS, startContender } from '../lib/contenders.mjs';
import { pick, metric, target, ratioOf } from '../lib/scenario.mjs';

export const description = 'Spawn to first HTTP 200, and to all workers running the app; fresh server per run.';

async function once(ctx, name) {
  const c = await startContender(name, { workers: ctx.workers, tmp: ctx.tmp });
  try {
    await c.waitWorkers();
    const allMs = performance.now() - c.launchedAt;
    ctx.log(`  ${name}: first 200 after ${c.startupMs.toFixed(0)} ms, all workers after ${allMs.toFixed(0)} ms`);
    return { firstMs: c.startupMs, allMs };
  } finally {
    await c.stop();
  }
}

export default async function startup(ctx) {
  const names = pick(ctx, CONTENDERS);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const broken = new Set();
  for (let rep = 0; rep < ctx.runs; rep++) {
    for (const name of names) {
      // A contender that cannot start at all is reported once, not per run.
      if (broken.has(name)) { samples[name].push(null); continue; }
      try {
        samples[name].push(await once(ctx, name));
      } catch (err) {
        ctx.fail(`${name} run ${rep + 1}: ${err.message}`);
        samples[name].push(null);
        if (rep === 0) broken.add(name);
      }
    }
  }
  const first = metric('launch to first 200', samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.firstMs });
  const all = metric('launch to all workers running the app', samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.allMs });
  return {
    raw: samples,
    params: { runs: ctx.runs, workers: ctx.workers },
    metrics: [first, all],
    targets: [
      // Both start Node twice (a master, then its workers).
      target('launch to first 200 corral/cluster-rr', ratioOf(first, 'cluster-rr'), '<=', 1.0, 'x'),
      target('launch to first 200 corral/single', ratioOf(first, 'single'), '<=', 1.2, 'x'),
    ],
  };
}
