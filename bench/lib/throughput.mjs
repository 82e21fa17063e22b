// The shape shared by the throughput scenarios: every contender under the
// same wrk load, alternating, req/s and latency per run.
import { runWrk } from './wrk.mjs';
import { alternate, warmUp, checkWrk, metric } from './scenario.mjs';

export function wrkOptions(ctx, close = false) {
  return { threads: ctx.threads, connections: ctx.connections, close };
}

// urlOf(contender) is the URL to load (the nginx scenario puts a front in
// between). Returns {name: [wrk result per rep]}.
export async function loadRuns(ctx, running, { close = false, urlOf = (c) => c.url } = {}) {
  const opts = wrkOptions(ctx, close);
  const targets = new Map([...running].map(([name, c]) => [name, { name, url: urlOf(c) }]));
  await warmUp(ctx, targets, opts);
  return alternate(ctx, targets, async (t) => {
    const res = await runWrk({ url: t.url, durationS: ctx.durationS, ...opts });
    ctx.log(`  ${t.name}: ${Math.round(res.rps)} req/s, p99 ${res.p99Ms} ms, errors ${res.errors}`);
    return checkWrk(ctx, t.name, res);
  });
}

export function throughputMetrics(samples, label) {
  return [
    metric(`${label}: requests per second`, samples, { unit: 'req/s', get: (r) => r.rps }),
    metric(`${label}: p99 latency`, samples, { unit: 'ms', higherIsBetter: false, get: (r) => r.p99Ms }),
  ];
}
