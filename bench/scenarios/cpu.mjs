// Efficiency: requests served per CPU-second spent by the whole server
// (master or primary or pm2 daemon, plus every worker), read from
// /proc/<pid>/stat before and after a keep-alive wrk run. Throughput alone
// hides a server that is fast only because it burns more CPU.
import { CONTENDERS } from '../lib/contenders.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { cpuTicks, cpuSecondsBetween } from '../lib/proc.mjs';
import { pick, withContenders, alternate, warmUp, checkWrk, metric, target, ratioOf } from '../lib/scenario.mjs';
import { wrkOptions } from '../lib/throughput.mjs';

export const description = 'Keep-alive wrk load; CPU = utime+stime of all server processes.';

async function measure(ctx, c) {
  const before = cpuTicks(c.serverPids());
  const res = checkWrk(ctx, c.name, await runWrk({ url: c.url, durationS: ctx.durationS, ...wrkOptions(ctx) }));
  // Processes present at the end; ones that started during the run count
  // from zero (none are expected).
  const cpuS = cpuSecondsBetween(before, cpuTicks(c.serverPids()));
  const perCpuS = cpuS > 0 ? res.requests / cpuS : null;
  ctx.log(`  ${c.name}: ${res.requests} requests, ${cpuS.toFixed(2)} CPU-s, ${Math.round(perCpuS)} req/CPU-s`);
  return { requests: res.requests, rps: res.rps, cpuS, perCpuS, cores: cpuS / res.seconds };
}

export default async function cpu(ctx) {
  const names = pick(ctx, CONTENDERS);
  const samples = await withContenders(ctx, names, async (running) => {
    await warmUp(ctx, running, wrkOptions(ctx));
    return alternate(ctx, running, (c) => measure(ctx, c));
  });
  const perCpu = metric('requests per server CPU-second', samples, { unit: 'req/CPU-s', get: (s) => s.perCpuS });
  const cores = metric('server CPU used', samples, { unit: 'cores', higherIsBetter: false, get: (s) => s.cores });
  const rps = metric('requests per second', samples, { unit: 'req/s', get: (s) => s.rps });
  return {
    raw: samples,
    params: { ...wrkOptions(ctx), durationS: ctx.durationS, runs: ctx.runs, workers: ctx.workers },
    metrics: [perCpu, cores, rps],
    targets: [
      // The same direct-accept shape: what is left between them is corral's own work per request.
      target('requests per server CPU-second corral/cluster-none', ratioOf(perCpu, 'cluster-none'), '>=', 0.95, 'x'),
      target('requests per server CPU-second corral/single', ratioOf(perCpu, 'single'), '>=', 0.95, 'x'),
    ],
  };
}
