// Access-log cost: corral serving hello-world with the access log written to a
// file (JSON lines, through the master) against the same server with the access
// log off, alternating in one run under keep-alive load.
import fs from 'node:fs';
import path from 'node:path';
import { Contender, CORRAL_CLI, HELLO_APP, launchContender } from '../lib/contenders.mjs';
import { freePort } from '../lib/ports.mjs';
import { alternate, checkWrk, metric, target, warmUp } from '../lib/scenario.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { pairedRatio, round } from '../lib/stats.mjs';

export const description = 'Keep-alive throughput with the access log in a file vs off (same server, same run).';

class CorralWithLog extends Contender {
  constructor(name, opts, accessLog) {
    super(name, opts);
    this.accessLog = accessLog === 'file' ? path.join(this.dir, 'access.log') : 'off';
  }

  async launch() {
    if (!fs.existsSync(CORRAL_CLI)) throw new Error(`corral is not built: ${CORRAL_CLI} is missing (run \`npm run build\`)`);
    const args = [CORRAL_CLI, '--bind', `127.0.0.1:${this.port}`, '--workers', String(this.workers),
      '--access-log', this.accessLog, HELLO_APP];
    this.child = this.spawnLogged(process.execPath, args, this.appEnv());
  }

  lines() {
    if (this.accessLog === 'off') return 0;
    let n = 0;
    const text = fs.readFileSync(this.accessLog, 'utf8');
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
    return n;
  }
}

export default async function logging(ctx) {
  const running = new Map();
  try {
    for (const [name, mode] of [['corral log off', 'off'], ['corral log file', 'file']]) {
      const opts = { workers: ctx.workers, tmp: ctx.tmp, port: await freePort('127.0.0.1') };
      running.set(name, await launchContender(new CorralWithLog(name, opts, mode)));
    }
    const wrk = { threads: ctx.threads, connections: ctx.connections, close: false };
    await warmUp(ctx, running, wrk);
    const samples = await alternate(ctx, running, async (c) => {
      const res = checkWrk(ctx, c.name, await runWrk({ url: c.url, durationS: ctx.durationS, ...wrk }));
      ctx.log(`  ${c.name}: ${Math.round(res.rps)} req/s`);
      return res;
    });
    const withLog = running.get('corral log file');
    // Every request wrk completed has its line (wrk may count a few more in flight at the end).
    const served = samples['corral log file'].reduce((sum, r) => sum + (r ? r.requests : 0), 0);
    const lines = withLog.lines();
    if (lines < served) ctx.fail(`access log has ${lines} lines for ${served} requests`);
    const rps = metric('keep-alive req/s by access log', samples, { unit: 'req/s', get: (r) => r.rps });
    const rpsOf = (runs) => runs.map((r) => (r ? r.rps : null));
    const { median: ratio } = pairedRatio(rpsOf(samples['corral log file']), rpsOf(samples['corral log off']));
    return {
      raw: samples,
      params: { ...wrk, durationS: ctx.durationS, runs: ctx.runs, workers: ctx.workers, linesWritten: lines },
      metrics: [rps],
      targets: [target('access log in a file, throughput kept (log file / log off)', round(ratio, 3), '>=', 0.9, 'x')],
    };
  } finally {
    for (const c of running.values()) await c.stop().catch((err) => ctx.fail(`${c.name} failed to stop: ${err.message}`));
  }
}
