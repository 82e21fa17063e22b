// Warm workers after a reload: a NestJS app (bench/apps/nest.mjs) under a keep-alive wrk
// load, measured for 6 s on warm workers, then for 6 s from the moment a HUP's new
// generation serves (the master logs it), while the old one drains. Each variant of corral
// turns on a different mechanism: the module compile cache (compile-cache; Node 22.1 and
// later, so run with BENCH_NODE naming such a node to see it), warm-up requests
// (warmup-requests), both, or neither. Every run starts a fresh server with a fresh cache
// directory: its first generation fills the cache the reload's generation starts from.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Contender, CORRAL_CLI, BENCH_DIR, launchContender } from '../lib/contenders.mjs';
import { freePort } from '../lib/ports.mjs';
import { sleep } from '../lib/proc.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { pick, metric } from '../lib/scenario.mjs';

export const description = 'NestJS app: requests and p99 in the 6 s after a HUP\'s new generation serves, against the same app warm; '
  + 'corral variants with and without the compile cache and warm-up requests (BENCH_NODE: the node to run, default this one).';

const NEST_APP = path.join(BENCH_DIR, 'apps', 'nest.mjs');
const NODE = process.env.BENCH_NODE || process.execPath;
const WINDOW_S = 6;
const READY_DEADLINE_MS = 60000;
/** What a warm-up asks for: the path the load asks for, and the list. */
const WARMUP = ['--warmup-requests', '/items/7,/items', '--warmup-count', '100'];

const VARIANTS = {
  corral: { cache: true, warmup: true },
  'corral-cold': { cache: false, warmup: false },
  'corral-cache': { cache: true, warmup: false },
  'corral-warmup': { cache: false, warmup: true },
};

class Variant extends Contender {
  constructor(name, opts) {
    super(name, opts);
    this.variant = VARIANTS[name];
    this.url = `http://127.0.0.1:${this.port}/items/7`;
  }

  async launch() {
    const cache = this.variant.cache ? path.join(this.dir, 'compile-cache') : 'off';
    const args = [CORRAL_CLI, '--bind', `127.0.0.1:${this.port}`, '--workers', String(this.workers), '--access-log', 'off',
      '--compile-cache', cache, ...(this.variant.warmup ? WARMUP : []), NEST_APP];
    this.child = this.spawnLogged(NODE, args, this.appEnv());
  }

  logText() {
    return fs.readFileSync(this.logFile, 'utf8');
  }

  /** HUP, then the time until the master says the new generation serves. */
  async reload() {
    const before = (this.logText().match(/generation \d+ serving/g) ?? []).length;
    const t0 = performance.now();
    process.kill(this.rootPid(), 'SIGHUP');
    while (performance.now() - t0 < READY_DEADLINE_MS) {
      const text = this.logText();
      if ((text.match(/generation \d+ serving/g) ?? []).length > before) return performance.now() - t0;
      if (/reload #\d+ failed/.test(text.split('\n').slice(-5).join('\n'))) throw new Error(`${this.name}: reload failed:\n${text.slice(-2000)}`);
      await sleep(5);
    }
    throw new Error(`${this.name}: no new generation within ${READY_DEADLINE_MS} ms`);
  }
}

async function once(ctx, name, opts) {
  const c = await launchContender(new Variant(name, { workers: ctx.workers, tmp: ctx.tmp, port: await freePort() }));
  try {
    // Warm: a first load (not measured) makes it so, then the same window as after the HUP.
    await runWrk({ url: c.url, durationS: ctx.smoke ? 1 : 4, ...opts });
    const warm = await runWrk({ url: c.url, durationS: WINDOW_S, ...opts });
    const reloadMs = await c.reload();
    const after = await runWrk({ url: c.url, durationS: WINDOW_S, ...opts });
    for (const [what, r] of [['warm', warm], ['after HUP', after]]) {
      if (r.errors > 0) ctx.fail(`${name} ${what}: ${r.non2xx} non-2xx, socket errors ${JSON.stringify(r.socketErrors)}`);
    }
    ctx.log(`  ${name}: warm ${warm.requests} req (p99 ${warm.p99Ms} ms); HUP -> serving ${reloadMs.toFixed(0)} ms; `
      + `after ${after.requests} req (p99 ${after.p99Ms} ms)`);
    return { warmRequests: warm.requests, warmP99: warm.p99Ms, afterRequests: after.requests, afterP99: after.p99Ms, reloadMs };
  } finally {
    await c.stop();
  }
}

export default async function warm(ctx) {
  const names = pick(ctx, Object.keys(VARIANTS));
  const opts = { threads: 1, connections: 16 };
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let rep = 0; rep < ctx.runs; rep++) {
    for (const name of names) {
      try {
        samples[name].push(await once(ctx, name, opts));
      } catch (err) {
        ctx.fail(`${name} run ${rep + 1}: ${err.message}`);
        samples[name].push(null);
      }
    }
  }
  const nodeVersion = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
  return {
    raw: samples,
    params: { ...opts, windowS: WINDOW_S, runs: ctx.runs, workers: ctx.workers, node: nodeVersion, warmup: WARMUP.join(' ') },
    metrics: [
      metric(`requests in the ${WINDOW_S} s after the new generation serves`, samples, { unit: 'requests', get: (s) => s.afterRequests }),
      metric(`requests in ${WINDOW_S} s on warm workers`, samples, { unit: 'requests', get: (s) => s.warmRequests }),
      metric('after HUP / warm, requests', samples, { unit: 'x', get: (s) => s.afterRequests / s.warmRequests }),
      metric(`p99 in the ${WINDOW_S} s after the new generation serves`, samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.afterP99 }),
      metric(`p99 in ${WINDOW_S} s on warm workers`, samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.warmP99 }),
      metric('HUP to the new generation serving', samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.reloadMs }),
    ],
    targets: [],
    notes: [`node ${nodeVersion}${nodeVersion.startsWith('v20.') ? ': no module compile cache on this line, so corral-cache is corral-cold and corral is corral-warmup' : ''}`],
  };
}
