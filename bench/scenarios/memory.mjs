// Memory: resident set of the master (node:cluster primary, pm2 daemon) and
// of the workers, idle after start and again after N keep-alive requests.
// The master must stay small and flat: it is the process that lives for
// months, and it never runs the app.
import { CONTENDERS, startContender } from '../lib/contenders.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { privateBytes, rssBytes, sleep } from '../lib/proc.mjs';
import { pick, checkWrk, metric, target, ratioOf } from '../lib/scenario.mjs';
import { wrkOptions } from '../lib/throughput.mjs';
import { median } from '../lib/stats.mjs';

export const description = 'RSS idle after start, then after N keep-alive requests (1 s settle each time); '
  + 'private memory = Private_Clean + Private_Dirty of /proc/PID/smaps_rollup (RSS also counts shared pages of the node binary).';

const MiB = 2 ** 20;
const MAX_CHUNKS = 30;

function rssSnapshot(c) {
  const master = c.masterPid();
  const priv = master ? privateBytes(master) : null;
  const workers = c.workerPids().map(rssBytes).filter(Number.isFinite);
  return {
    masterMiB: master ? rssBytes(master) / MiB : null,
    masterPrivateMiB: priv === null ? null : priv / MiB,
    workerMiB: workers.length ? median(workers) / MiB : null,
  };
}

// Keep-alive load in chunks until `requests` have been served. Each chunk's
// length is sized from the rate of the previous one; bounded in count.
async function serveRequests(ctx, c, requests) {
  let served = 0;
  let durationS = Math.min(ctx.durationS, 5);
  for (let i = 0; i < MAX_CHUNKS && served < requests; i++) {
    const res = checkWrk(ctx, c.name, await runWrk({ url: c.url, durationS, ...wrkOptions(ctx) }));
    served += res.requests;
    const rate = res.requests / res.seconds;
    durationS = Math.min(60, Math.max(1, Math.ceil((requests - served) / rate)));
  }
  if (served < requests) ctx.fail(`${c.name}: served only ${served} of ${requests} requests`);
  return served;
}

async function once(ctx, name) {
  const c = await startContender(name, { workers: ctx.workers, tmp: ctx.tmp });
  try {
    await c.waitWorkers();
    // Let start-up garbage be collected and lazy allocations settle.
    const settleMs = ctx.smoke ? 200 : 1000;
    await sleep(settleMs);
    const idle = rssSnapshot(c);
    const served = await serveRequests(ctx, c, ctx.requests);
    await sleep(settleMs);
    const after = rssSnapshot(c);
    const growth = idle.masterMiB === null ? null : after.masterMiB - idle.masterMiB;
    const mib = (x) => (x === null ? 'n/a' : x.toFixed(1));
    ctx.log(`  ${name}: master ${mib(idle.masterMiB)} -> ${mib(after.masterMiB)} MiB, `
      + `worker ${mib(idle.workerMiB)} -> ${mib(after.workerMiB)} MiB after ${served} requests`);
    return { idle, after, growth, served };
  } finally {
    await c.stop();
  }
}

export default async function memory(ctx) {
  const names = pick(ctx, CONTENDERS);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let rep = 0; rep < ctx.runs; rep++) {
    for (const name of names) {
      try {
        samples[name].push(await once(ctx, name));
      } catch (err) {
        ctx.fail(`${name} run ${rep + 1}: ${err.message}`);
        samples[name].push(null);
      }
    }
  }
  const masters = Object.fromEntries(Object.entries(samples).filter(([n]) => n !== 'single'));
  const opt = { unit: 'MiB', higherIsBetter: false };
  const mIdle = metric('master RSS, idle', masters, { ...opt, get: (s) => s.idle.masterMiB });
  const mAfter = metric(`master RSS after ${ctx.requests} requests`, masters, { ...opt, get: (s) => s.after.masterMiB });
  const mPrivate = metric(`master private memory after ${ctx.requests} requests`, masters, { ...opt, get: (s) => s.after.masterPrivateMiB ?? null });
  const mGrowth = metric('master RSS growth (after - idle)', masters, { ...opt, get: (s) => s.growth });
  const wIdle = metric('worker RSS, idle (median of workers)', samples, { ...opt, get: (s) => s.idle.workerMiB });
  const wAfter = metric(`worker RSS after ${ctx.requests} requests (median of workers)`, samples, { ...opt, get: (s) => s.after.workerMiB });
  const growth = mGrowth.contenders.corral;
  return {
    raw: samples,
    params: { ...wrkOptions(ctx), requests: ctx.requests, runs: ctx.runs, workers: ctx.workers },
    metrics: [mIdle, mAfter, mPrivate, mGrowth, wIdle, wAfter],
    targets: [
      target(`master RSS after ${ctx.requests} requests corral/cluster-rr primary`, ratioOf(mAfter, 'cluster-rr'), '<=', 1.0, 'x'),
      target(`master RSS growth over ${ctx.requests} requests, corral, worst run`, growth ? growth.max : null, '<=', 5, ' MiB'),
    ],
    notes: ['pm2\'s "master" is its daemon (God), which forks the workers.'],
  };
}
