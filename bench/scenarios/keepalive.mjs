// Keep-alive throughput: wrk holds its connections open and sends requests
// back to back, the load a proxy with an upstream keepalive pool sends.
import { CONTENDERS } from '../lib/contenders.mjs';
import { pick, withContenders, target, ratioOf } from '../lib/scenario.mjs';
import { loadRuns, throughputMetrics, wrkOptions } from '../lib/throughput.mjs';

export const description = 'wrk with persistent connections against each contender directly.';

export default async function keepalive(ctx) {
  const names = pick(ctx, CONTENDERS);
  const samples = await withContenders(ctx, names, (running) => loadRuns(ctx, running));
  const [rps, p99] = throughputMetrics(samples, 'keep-alive');
  return {
    raw: samples,
    params: { ...wrkOptions(ctx), durationS: ctx.durationS, runs: ctx.runs, workers: ctx.workers },
    metrics: [rps, p99],
    targets: [
      target('keepalive req/s corral/cluster-rr', ratioOf(rps, 'cluster-rr'), '>=', 1.0, 'x'),
      target('keepalive req/s corral/pm2', ratioOf(rps, 'pm2'), '>=', 1.05, 'x'),
    ],
  };
}
