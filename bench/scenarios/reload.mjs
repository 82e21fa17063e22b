// Zero-downtime reload: a bounded keep-alive load runs while the reload
// action is sent every few seconds (corral: SIGHUP to the master; pm2:
// `pm2 reload`). Every non-2xx answer and socket error wrk sees is a request
// a user would have seen fail.
import { runWrk } from '../lib/wrk.mjs';
import { sleep } from '../lib/proc.mjs';
import { pick, withContenders, alternate, warmUp, metric, target } from '../lib/scenario.mjs';
import { sum, max } from '../lib/stats.mjs';

export const description = 'Keep-alive wrk load (16 connections) with a reload every few seconds; '
  + 'errors = non-2xx + socket errors.';

const RELOAD_DEADLINE_MS = 60000;

// Reload finished: the old workers are all gone and a full set of new ones
// is registered and alive.
async function waitReplaced(c, old) {
  const t0 = performance.now();
  while (performance.now() - t0 < RELOAD_DEADLINE_MS) {
    const now = c.workerPids();
    if (now.length >= c.workers && !now.some((pid) => old.includes(pid))) return performance.now() - t0;
    await sleep(20);
  }
  throw new Error(`${c.name}: reload did not replace workers ${old.join(',')} within ${RELOAD_DEADLINE_MS} ms`);
}

async function reloadLoop(ctx, c, plan) {
  const times = [];
  const start = performance.now();
  for (const at of plan) {
    const wait = at * 1000 - (performance.now() - start);
    if (wait > 0) await sleep(wait);
    const old = c.workerPids();
    const t0 = performance.now();
    await c.reload();
    await waitReplaced(c, old);
    times.push(performance.now() - t0);
  }
  return times;
}

function reloadPlan(ctx, durationS) {
  const intervalS = ctx.smoke ? 1 : 3;
  const plan = [];
  for (let at = 0.5; at <= durationS - 1; at += intervalS) plan.push(at);
  return plan;
}

async function measure(ctx, c, opts) {
  const durationS = Math.max(ctx.durationS, 2);
  const plan = reloadPlan(ctx, durationS);
  const [res, times] = await Promise.all([
    runWrk({ url: c.url, durationS, ...opts }),
    reloadLoop(ctx, c, plan),
  ]);
  ctx.log(`  ${c.name}: ${times.length} reloads (${times.map((t) => Math.round(t)).join(', ')} ms), `
    + `${res.requests} requests, ${res.non2xx} non-2xx, socket errors ${JSON.stringify(res.socketErrors)}`);
  if (c.name === 'corral' && res.errors > 0) ctx.fail(`corral: ${res.errors} failed requests during reload`);
  return { errors: res.errors, non2xx: res.non2xx, socketErrors: res.socketErrors, reloads: times.length,
    reloadMs: max(times), rps: res.rps, requests: res.requests };
}

export default async function reload(ctx) {
  const names = pick(ctx, ['corral', 'pm2']);
  const opts = { threads: 1, connections: 16 };
  const samples = await withContenders(ctx, names, async (running) => {
    await warmUp(ctx, running, opts);
    return alternate(ctx, running, (c) => measure(ctx, c, opts));
  });
  const errors = metric('failed requests per run (non-2xx + socket errors)', samples, { unit: 'requests', higherIsBetter: false, get: (s) => s.errors });
  const reloadMs = metric('slowest reload in a run (signal to old workers gone)', samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.reloadMs });
  const rps = metric('requests per second during reloads', samples, { unit: 'req/s', get: (s) => s.rps });
  const corralErrors = samples.corral ? sum(samples.corral.map((s) => (s ? s.errors : NaN))) : null;
  const corralOk = samples.corral && samples.corral.every(Boolean) ? corralErrors : null;
  return {
    raw: samples,
    params: { ...opts, durationS: Math.max(ctx.durationS, 2), runs: ctx.runs, workers: ctx.workers, reloadEveryS: ctx.smoke ? 1 : 3 },
    metrics: [errors, reloadMs, rps],
    targets: [target('reload under load: corral failed requests, all runs', corralOk, '<=', 0)],
    notes: Object.entries(samples).map(([name, list]) => `${name}: reloads per run ${list.map((s) => (s ? s.reloads : 'failed')).join(', ')}`),
  };
}
