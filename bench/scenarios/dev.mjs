// Development mode: save a file, how soon does the new code answer, and does
// any request fail meanwhile? corral dev (a reload through the master, the
// socket kept open, a warm spare worker), the same without the spare, nodemon
// and `node --watch`, each serving the same small app from a directory of its
// own. Each edit rewrites the app with a new version string while two steady
// clients run (one on a keep-alive connection, one on a new connection per
// request); the time from the write to the first answer carrying the new
// version is the latency, and every socket error or non-2xx answer from just
// before the write until 1 s after the new version is seen is a failure.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Contender, CORRAL_CLI, launchContender, resolvePeer } from '../lib/contenders.mjs';
import { freePort } from '../lib/ports.mjs';
import { sleep } from '../lib/proc.mjs';
import { pick, metric, target } from '../lib/scenario.mjs';
import { median, sum } from '../lib/stats.mjs';

export const description = 'Save to first response with the new code, and failed requests during the '
  + 'reload, for corral dev, nodemon and node --watch (one process/worker each).';

const HOST = '127.0.0.1';
const CONTENDERS = ['corral', 'corral-nospare', 'nodemon', 'node-watch'];
const PEERS = ['nodemon', 'node-watch'];
const SETTLE_MS = 1000;
const SMOKE_SETTLE_MS = 300;
const EDIT_DEADLINE_MS = 15000;

function appSource(version) {
  return `// The dev bench app: answers its version. Under corral the default export is served;
// run directly (nodemon, node --watch) it listens on BENCH_PORT itself.
import http from 'node:http';
const VERSION = '${version}';
export default function handler(req, res) {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': VERSION.length });
  res.end(VERSION);
}
if (process.env.BENCH_PORT) http.createServer(handler).listen(Number(process.env.BENCH_PORT), '${HOST}');
`;
}

class DevContender extends Contender {
  constructor(name, opts) {
    super(name, { ...opts, workers: 1 });
    // The app lives apart from the contender's own log file, which would otherwise be a change.
    this.appDir = path.join(this.dir, 'app');
    fs.mkdirSync(this.appDir);
    this.appFile = path.join(this.appDir, 'app.mjs');
    fs.writeFileSync(this.appFile, appSource('v0'));
  }

  spawnIn(command, args, env) {
    const out = fs.openSync(this.logFile, 'a');
    const child = (this.child = spawnDetached(command, args, env, this.appDir, out));
    fs.closeSync(out);
    return child;
  }

  async launch() {
    const env = this.appEnv();
    delete env.BENCH_STATS_DIR;
    const peerEnv = { ...env, BENCH_PORT: String(this.port) };
    if (this.name === 'corral' || this.name === 'corral-nospare') {
      const args = [CORRAL_CLI, 'dev', '--bind', `${HOST}:${this.port}`, '--access-log', 'off'];
      if (this.name === 'corral-nospare') args.push('--no-spare');
      this.spawnIn(process.execPath, [...args, 'app.mjs'], env);
    } else if (this.name === 'nodemon') {
      this.spawnIn(process.execPath, [path.join(resolvePeer('nodemon'), 'bin', 'nodemon.js'), 'app.mjs'], peerEnv);
    } else {
      this.spawnIn(process.execPath, ['--watch', 'app.mjs'], peerEnv);
    }
  }
}

function spawnDetached(command, args, env, cwd, out) {
  const child = spawn(command, args, { env, cwd, detached: true, stdio: ['ignore', out, out] });
  child.on('exit', (code, signal) => { child.exitInfo = { code, signal }; });
  child.on('error', (err) => { child.exitInfo = { error: err.message }; });
  return child;
}

function request(port, agent) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path: '/', agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// One steady client: requests back to back until stopped, noting failures and
// the first answer with `want` after `since`. After an error it waits 2 ms, so a
// refused port is not a busy loop competing with the restart for the CPU.
async function client(port, keepAlive, state) {
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  while (!state.stop) {
    try {
      const r = await request(port, agent);
      state.sent++;
      if (r.status < 200 || r.status >= 300) state.failed++;
      else if (r.body === state.want && state.firstNewAt === null && state.writtenAt !== null) state.firstNewAt = performance.now();
    } catch (err) {
      state.sent++;
      state.failed++;
      state.errors[err.code || err.message] = (state.errors[err.code || err.message] || 0) + 1;
      await sleep(2);
    }
  }
  if (agent) agent.destroy();
}

async function oneEdit(c, version, settleMs) {
  const state = { stop: false, want: version, writtenAt: null, firstNewAt: null, sent: 0, failed: 0, errors: {} };
  const clients = [client(c.port, true, state), client(c.port, false, state)];
  await sleep(200);
  state.writtenAt = performance.now();
  fs.writeFileSync(c.appFile, appSource(version));
  const end = state.writtenAt + EDIT_DEADLINE_MS;
  while (state.firstNewAt === null && performance.now() < end) await sleep(1);
  if (state.firstNewAt !== null) await sleep(settleMs);
  state.stop = true;
  await Promise.all(clients);
  if (state.firstNewAt === null) throw new Error(`${c.name}: ${version} not served within ${EDIT_DEADLINE_MS} ms`);
  return { latencyMs: state.firstNewAt - state.writtenAt, failed: state.failed, sent: state.sent, errors: state.errors };
}

export default async function dev(ctx) {
  const names = pick(ctx, CONTENDERS);
  const edits = ctx.smoke ? 2 : Math.max(10, ctx.runs);
  const running = new Map();
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  try {
    for (const name of names) {
      try {
        ctx.log(`starting ${name}`);
        running.set(name, await launchContender(new DevContender(name, { tmp: ctx.tmp, port: await freePort(HOST) })));
      } catch (err) {
        ctx.fail(`${name} failed to start: ${err.message}`);
      }
    }
    await sleep(1000); // let each settle (corral starts its spare after the first worker is ready)
    for (let i = 1; i <= edits; i++) {
      for (const [name, c] of running) {
        try {
          const s = await oneEdit(c, `v${i}`, ctx.smoke ? SMOKE_SETTLE_MS : SETTLE_MS);
          samples[name].push(s);
          ctx.log(`  ${name} edit ${i}: new code after ${s.latencyMs.toFixed(1)} ms, ${s.failed} failed of ${s.sent}${s.failed ? ` ${JSON.stringify(s.errors)}` : ''}`);
        } catch (err) {
          ctx.fail(`${name} edit ${i}: ${err.message}`);
          samples[name].push(null);
        }
        await sleep(300);
      }
    }
  } finally {
    for (const [name, c] of running) await c.stop().catch((err) => ctx.fail(`${name} failed to stop: ${err.message}`));
  }
  for (const [name, list] of Object.entries(samples)) {
    if (name.startsWith('corral') && list.some((s) => s && s.failed > 0)) ctx.fail(`${name}: requests failed during reloads`);
  }
  const latency = metric('save to first response with the new code', samples, { unit: 'ms', higherIsBetter: false, get: (s) => s.latencyMs });
  const failed = metric('failed requests per edit (socket errors + non-2xx, both clients)', samples, { unit: 'requests', higherIsBetter: false, get: (s) => s.failed });
  const peerMedians = PEERS.map((p) => latency.contenders[p]?.median).filter(Number.isFinite);
  const faster = peerMedians.length ? Math.min(...peerMedians) : null;
  const corralMedian = latency.contenders.corral?.median;
  const ratio = Number.isFinite(corralMedian) && faster ? corralMedian / faster : null;
  const corralFailed = samples.corral && samples.corral.every(Boolean) ? sum(samples.corral.map((s) => s.failed)) : null;
  const notes = Object.entries(samples).map(([name, list]) => {
    const errs = {};
    for (const s of list) for (const [k, v] of Object.entries(s?.errors || {})) errs[k] = (errs[k] || 0) + v;
    const ok = list.filter(Boolean);
    return `${name}: ${sum(ok.map((s) => s.failed))} failed of ${sum(ok.map((s) => s.sent))} requests over ${ok.length} edits`
      + `${Object.keys(errs).length ? ` (${Object.entries(errs).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}; median latency ${median(ok.map((s) => s.latencyMs))?.toFixed(1)} ms`;
  });
  return {
    raw: samples,
    params: { edits, settleMs: ctx.smoke ? SMOKE_SETTLE_MS : SETTLE_MS, clients: 'one keep-alive, one new connection per request' },
    metrics: [latency, failed],
    targets: [
      target('dev: save to new code, corral median / faster peer median', ratio, '<=', 0.5, 'x'),
      target('dev: corral failed requests, all edits', corralFailed, '<=', 0),
    ],
    notes,
  };
}
