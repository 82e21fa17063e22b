// Connection churn: every request on a new connection (the client sends
// 'Connection: close'), as nginx does towards an upstream without keepalive.
import { CONTENDERS } from '../lib/contenders.mjs';
import { pick, withContenders, target, ratioOf } from '../lib/scenario.mjs';
import { loadRuns, throughputMetrics, wrkOptions } from '../lib/throughput.mjs';

export const description = "wrk with 'Connection: close': one TCP connection per request.";

export default async function close(ctx) {
  const names = pick(ctx, CONTENDERS);
  const samples = await withContenders(ctx, names, (running) => loadRuns(ctx, running, { close: true }));
  const [rps, p99] = throughputMetrics(samples, 'connection per request');
  return {
    raw: samples,
    params: { ...wrkOptions(ctx, true), durationS: ctx.durationS, runs: ctx.runs, workers: ctx.workers },
    metrics: [rps, p99],
    targets: [
      target('close req/s corral/cluster-rr', ratioOf(rps, 'cluster-rr'), '>=', 1.9, 'x'),
      target('close req/s corral/pm2', ratioOf(rps, 'pm2'), '>=', 2.5, 'x'),
    ],
  };
}
