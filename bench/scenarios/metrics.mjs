// Metrics cost: corral serving hello-world with the metrics listener on and scraped every
// second, against the same server with metrics off, alternating in one run under
// keep-alive load; and the master's RSS after each load.
import fs from 'node:fs';
import http from 'node:http';
import { Contender, CORRAL_CLI, HELLO_APP, launchContender } from '../lib/contenders.mjs';
import { freePort } from '../lib/ports.mjs';
import { rssBytes } from '../lib/proc.mjs';
import { alternate, checkWrk, metric, target, warmUp } from '../lib/scenario.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { median, pairedRatio, round } from '../lib/stats.mjs';

export const description = 'Keep-alive throughput and master RSS with /metrics on and scraped every second vs metrics off (same run).';

class CorralMetrics extends Contender {
  constructor(name, opts, metricsPort) {
    super(name, opts);
    this.metricsPort = metricsPort;
  }

  async launch() {
    if (!fs.existsSync(CORRAL_CLI)) throw new Error(`corral is not built: ${CORRAL_CLI} is missing (run \`npm run build\`)`);
    const args = [CORRAL_CLI, '--bind', `127.0.0.1:${this.port}`, '--workers', String(this.workers), '--access-log', 'off'];
    if (this.metricsPort) args.push('--metrics-bind', `127.0.0.1:${this.metricsPort}`);
    this.child = this.spawnLogged(process.execPath, [...args, HELLO_APP], this.appEnv());
  }
}

function scrape(port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let n = 0;
      res.on('data', (c) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`/metrics answered ${res.statusCode}`))));
    });
    req.setTimeout(5000, () => req.destroy(new Error('/metrics timed out')));
    req.on('error', reject);
  });
}

/** Scrapes every second while `body` runs; returns its result and the scrapes made. */
async function whileScraped(port, body) {
  let scrapes = 0;
  let failure;
  const timer = port && setInterval(() => scrape(port).then(() => scrapes++, (err) => (failure = err)), 1000);
  try {
    return { res: await body(), scrapes, failure };
  } finally {
    if (timer) clearInterval(timer);
  }
}

export default async function metrics(ctx) {
  const running = new Map();
  try {
    for (const [name, on] of [['corral metrics off', false], ['corral metrics on', true]]) {
      const opts = { workers: ctx.workers, tmp: ctx.tmp, port: await freePort('127.0.0.1') };
      running.set(name, await launchContender(new CorralMetrics(name, opts, on ? await freePort('127.0.0.1') : 0)));
    }
    const wrk = { threads: ctx.threads, connections: ctx.connections, close: false };
    await warmUp(ctx, running, wrk);
    const samples = await alternate(ctx, running, async (c) => {
      const { res, scrapes, failure } = await whileScraped(c.metricsPort, async () => checkWrk(ctx, c.name, await runWrk({ url: c.url, durationS: ctx.durationS, ...wrk })));
      if (failure) ctx.fail(`${c.name}: scrape failed: ${failure.message}`);
      const masterRss = rssBytes(c.child.pid);
      ctx.log(`  ${c.name}: ${Math.round(res.rps)} req/s, master RSS ${(masterRss / 1048576).toFixed(1)} MiB${c.metricsPort ? `, ${scrapes} scrapes` : ''}`);
      return { ...res, masterRss, scrapes };
    });
    const rps = metric('keep-alive req/s by metrics', samples, { unit: 'req/s', get: (r) => r.rps });
    const rss = metric('master RSS after each load', samples, { unit: 'MiB', higherIsBetter: false, get: (r) => round(r.masterRss / 1048576, 2) });
    const rpsOf = (runs) => runs.map((r) => (r ? r.rps : null));
    const { median: ratio } = pairedRatio(rpsOf(samples['corral metrics on']), rpsOf(samples['corral metrics off']));
    const rssOf = (runs) => median(runs.filter(Boolean).map((r) => r.masterRss));
    const rssDelta = (rssOf(samples['corral metrics on']) - rssOf(samples['corral metrics off'])) / 1048576;
    return {
      raw: samples,
      params: { ...wrk, durationS: ctx.durationS, runs: ctx.runs, workers: ctx.workers, scrapeEveryS: 1 },
      metrics: [rps, rss],
      targets: [
        target('throughput with metrics on and scraped every second (on / off)', round(ratio, 3), '>=', 0.97, 'x'),
        target('master RSS with metrics on, above metrics off', round(rssDelta, 2), '<=', 5, 'MiB'),
      ],
    };
  } finally {
    for (const c of running.values()) await c.stop().catch((err) => ctx.fail(`${c.name} failed to stop: ${err.message}`));
  }
}
