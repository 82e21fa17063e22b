// Fairness under keep-alive: each worker's share of the connections and of
// the requests of one wrk run. Counts come from the app itself (each worker
// appends its counters to a file on SIGUSR2, see apps/hello.mjs), taken
// before and after the run, so they work alike for every supervisor.
import { CONTENDERS } from '../lib/contenders.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { pick, withContenders, alternate, warmUp, checkWrk, metric, target } from '../lib/scenario.mjs';
import { wrkOptions } from '../lib/throughput.mjs';

export const description = 'Keep-alive wrk load; per-worker shares of connections and requests.';

// Largest share, in percent, of the per-worker deltas of `key`.
function maxShare(before, after, key) {
  const deltas = [...after].map(([pid, a]) => a[key] - (before.get(pid)?.[key] || 0));
  const total = deltas.reduce((x, y) => x + y, 0);
  return { total, shares: deltas.map((d) => (total ? (100 * d) / total : 0)), max: total ? (100 * Math.max(...deltas)) / total : null };
}

async function measure(ctx, c) {
  await c.waitWorkers();
  const before = await c.readCounts();
  const res = checkWrk(ctx, c.name, await runWrk({ url: c.url, durationS: ctx.durationS, ...wrkOptions(ctx) }));
  const after = await c.readCounts();
  const reqs = maxShare(before, after, 'reqs');
  const conns = maxShare(before, after, 'conns');
  if (reqs.total < res.requests) ctx.fail(`${c.name}: workers counted ${reqs.total} requests, wrk ${res.requests}`);
  ctx.log(`  ${c.name}: request shares ${reqs.shares.map((s) => s.toFixed(1)).join('/')}%, `
    + `connection shares ${conns.shares.map((s) => s.toFixed(1)).join('/')}%`);
  return { maxReqShare: reqs.max, maxConnShare: conns.max, reqShares: reqs.shares, connShares: conns.shares, rps: res.rps };
}

export default async function balance(ctx) {
  // A single process has nothing to balance.
  const names = pick(ctx, CONTENDERS.filter((n) => n !== 'single'));
  const samples = await withContenders(ctx, names, async (running) => {
    await warmUp(ctx, running, wrkOptions(ctx));
    return alternate(ctx, running, (c) => measure(ctx, c));
  });
  const reqShare = metric('largest worker share of requests', samples, { unit: '%', higherIsBetter: false, get: (s) => s.maxReqShare });
  const connShare = metric('largest worker share of connections', samples, { unit: '%', higherIsBetter: false, get: (s) => s.maxConnShare });
  const corral = reqShare.contenders.corral;
  const fair = 100 / ctx.workers;
  const limit = ctx.workers === 2 ? 65 : Math.round(fair * 1.3);
  return {
    raw: samples,
    params: { ...wrkOptions(ctx), durationS: ctx.durationS, runs: ctx.runs, workers: ctx.workers },
    metrics: [reqShare, connShare],
    targets: [
      target(`largest worker share of requests, corral, median of runs (fair ${fair.toFixed(1)}%)`, corral ? corral.median : null, '<=', limit, '%'),
      target('largest worker share of requests, corral, worst run', corral ? corral.max : null, '<=', limit, '%'),
    ],
    notes: Object.entries(samples).map(([name, list]) => `${name} request shares per run: ${list.map((s) => (s ? s.reqShares.map((x) => x.toFixed(0)).join('/') : 'failed')).join(', ')}`),
  };
}
