// Behind a real nginx, the way corral is deployed. Two upstream modes:
// without upstream keepalive (nginx's default: a new connection to the
// upstream per request, so the upstream sees pure connection churn) and with
// `keepalive 32` + HTTP/1.1 (a pool of long-lived upstream connections).
import { CONTENDERS } from '../lib/contenders.mjs';
import { startNginx } from '../lib/nginx.mjs';
import { pick, withContenders, target, ratioOf } from '../lib/scenario.mjs';
import { loadRuns, throughputMetrics, wrkOptions } from '../lib/throughput.mjs';

export const description = 'wrk (keep-alive) -> nginx (2 workers) -> contender; '
  + 'upstream without keepalive, then with keepalive 32.';

const NGINX_WORKERS = 2;

export default async function nginx(ctx) {
  const names = pick(ctx, CONTENDERS);
  const samples = await withContenders(ctx, names, async (running) => {
    if (running.size === 0) return { close: {}, keepalive: {} };
    const upstreams = [...running].map(([name, c]) => ({ name, port: c.port }));
    const front = await startNginx({ tmp: ctx.tmp, upstreams, workerProcesses: NGINX_WORKERS });
    try {
      ctx.log('upstream without keepalive');
      const close = await loadRuns(ctx, running, { urlOf: (c) => front.fronts[c.name].close });
      ctx.log('upstream keepalive 32');
      const keepalive = await loadRuns(ctx, running, { urlOf: (c) => front.fronts[c.name].keepalive });
      return { close, keepalive };
    } finally {
      await front.stop();
    }
  });
  const [closeRps, closeP99] = throughputMetrics(samples.close || {}, 'nginx, no upstream keepalive');
  const [kaRps, kaP99] = throughputMetrics(samples.keepalive || {}, 'nginx, upstream keepalive 32');
  return {
    raw: samples,
    params: { ...wrkOptions(ctx), durationS: ctx.durationS, runs: ctx.runs, workers: ctx.workers, nginxWorkers: NGINX_WORKERS },
    metrics: [closeRps, closeP99, kaRps, kaP99],
    targets: [
      target('nginx (no upstream keepalive) req/s corral/cluster-rr', ratioOf(closeRps, 'cluster-rr'), '>=', 1.6, 'x'),
    ],
  };
}
