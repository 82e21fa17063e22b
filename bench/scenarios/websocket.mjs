// Long-lived connections through a reload: 500 WebSocket clients (each sending a message
// a second and checking the echo) and 50 Server-Sent Event streams on corral, every client
// reconnecting as soon as its connection ends, as real clients do. Then SIGHUP. corral ends
// what the old workers' app left open (a 1012 close frame, a clean end of the stream), at
// random moments spread over --close-spread (default 5 s); with --close-spread 0 it ends
// them all at once, which is what uvicorn does at a reload. Measured: how many clients
// reconnect in the busiest 100 ms, how far apart the first and last close are, which close
// codes arrive, and how long until every client is on a new worker.
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, Contender, CORRAL_CLI, launchContender } from '../lib/contenders.mjs';
import { freePort } from '../lib/ports.mjs';
import { sleep } from '../lib/proc.mjs';
import { alternate, metric, ratioOf, target } from '../lib/scenario.mjs';
import { sum } from '../lib/stats.mjs';
import { LongLivedLoad } from '../lib/ws-load.mjs';

export const description = 'WebSocket echo clients and SSE streams through a reload (SIGHUP), every client reconnecting '
  + 'at once when its connection ends: corral with its default --close-spread (5 s) and with --close-spread 0 '
  + '(every connection ended in the same instant, as uvicorn does).';

const ECHO_APP = path.join(BENCH_DIR, 'apps', 'ws-echo.mjs');
const RELOAD_CODE = 1012;
const WINDOW_MS = 100;
const MESSAGE_EVERY_MS = 1000;
// The variants: the same corral, with its default close spread and with none.
const VARIANTS = [['corral', 5], ['corral-spread0', 0]];

class CorralLongLived extends Contender {
  constructor(name, opts, closeSpreadS) {
    super(name, opts);
    this.closeSpreadS = closeSpreadS;
  }

  async launch() {
    if (!fs.existsSync(CORRAL_CLI)) throw new Error(`corral is not built: ${CORRAL_CLI} is missing (run \`npm run build\`)`);
    const args = [CORRAL_CLI, '--bind', `127.0.0.1:${this.port}`, '--workers', String(this.workers),
      '--access-log', 'off', '--close-spread', String(this.closeSpreadS), ECHO_APP];
    this.child = this.spawnLogged(process.execPath, args, this.appEnv());
  }

  async reload() {
    process.kill(this.rootPid(), 'SIGHUP');
  }
}

async function waitGone(c, pids, deadlineMs) {
  const t0 = performance.now();
  while (c.workerPids().some((pid) => pids.includes(pid))) {
    if (performance.now() - t0 > deadlineMs) throw new Error(`${c.name}: old workers ${pids.join(',')} still running after ${deadlineMs} ms`);
    await sleep(20);
  }
}

// What in a run's summary is an error: anything but a 1012 close for each WebSocket, a clean
// end for each stream, and a successful handshake for every client.
function problems(s, clients) {
  const out = [];
  const otherCodes = Object.entries(s.wsCloseCodes).filter(([code]) => Number(code) !== RELOAD_CODE);
  if (otherCodes.length) out.push(`close codes other than ${RELOAD_CODE}: ${JSON.stringify(Object.fromEntries(otherCodes))}`);
  if (s.sseResets) out.push(`${s.sseResets} SSE streams reset`);
  if (s.failedHandshakes) out.push(`${s.failedHandshakes} failed handshakes ${JSON.stringify(s.failures)}`);
  if (s.echoMismatches) out.push(`${s.echoMismatches} echoes out of order or wrong`);
  const wsCloses = sum(Object.values(s.wsCloseCodes));
  if (wsCloses !== clients.ws) out.push(`${wsCloses} WebSocket closes for ${clients.ws} clients`);
  if (s.sseEnded + s.sseResets !== clients.sse) out.push(`${s.sseEnded + s.sseResets} SSE ends for ${clients.sse} streams`);
  return out;
}

async function measure(ctx, c, clients) {
  const load = new LongLivedLoad({
    url: c.url, ...clients, intervalMs: MESSAGE_EVERY_MS, reconnect: true, serverHeader: 'x-served-by', deadlineMs: 120000,
  });
  try {
    await load.open();
    const before = load.summary();
    if (before.initialFailed) throw new Error(`${before.initialFailed} of ${load.clients.length} clients failed to connect: ${JSON.stringify(before.failures)}`);
    await sleep(ctx.smoke ? 500 : 1000); // a few echoes before the reload
    const old = load.servers();
    const oldPids = c.workerPids();
    const hup = performance.now();
    await c.reload();
    const movedAt = await load.waitMovedFrom(old, c.closeSpreadS * 1000 + 15000);
    await waitGone(c, oldPids, 30000);
    const s = load.summary({ since: hup, windowMs: WINDOW_MS });
    const errors = problems(s, clients);
    for (const e of errors) ctx.fail(`${c.name}: ${e}`);
    const movedMs = Math.round(movedAt - hup);
    ctx.log(`  ${c.name}: closes ${JSON.stringify(s.wsCloseCodes)} + ${s.sseEnded} SSE ends over ${s.closeSpreadMs} ms, `
      + `peak ${s.peakReconnectsPerWindow} reconnects / ${s.peakClosesPerWindow} closes per ${WINDOW_MS} ms, `
      + `all on new workers after ${movedMs} ms, ${s.echoes} echoes`);
    return { ...s, movedMs, errors: errors.length };
  } finally {
    await load.stop();
  }
}

// One open-and-close of the whole load per contender, so the first measured run is not
// also the one that warms the JIT and the kernel's socket caches.
async function warmUp(ctx, running, clients) {
  if (!ctx.warmupS) return;
  for (const c of running.values()) {
    const load = new LongLivedLoad({ url: c.url, ...clients, intervalMs: MESSAGE_EVERY_MS, deadlineMs: 60000 });
    try {
      await load.open();
      await sleep(ctx.warmupS * 1000);
    } finally {
      await load.stop();
    }
  }
}

export default async function websocket(ctx) {
  const clients = ctx.smoke ? { ws: 50, sse: 5 } : { ws: 500, sse: 50 };
  const total = clients.ws + clients.sse;
  const running = new Map();
  const variants = ctx.only && !ctx.only.includes('corral') ? [] : VARIANTS;
  let samples = {};
  try {
    for (const [name, spread] of variants) {
      const opts = { workers: ctx.workers, tmp: ctx.tmp, port: await freePort('127.0.0.1') };
      try {
        ctx.log(`starting ${name}`);
        running.set(name, await launchContender(new CorralLongLived(name, opts, spread)));
      } catch (err) {
        ctx.fail(`${name} failed to start: ${err.message}`);
      }
    }
    await warmUp(ctx, running, clients);
    samples = await alternate(ctx, running, (c) => measure(ctx, c, clients));
  } finally {
    for (const c of running.values()) await c.stop().catch((err) => ctx.fail(`${c.name} failed to stop: ${err.message}`));
  }
  const peakReconnects = metric(`peak reconnects in any ${WINDOW_MS} ms after the reload (of ${total} clients)`, samples,
    { unit: 'clients', higherIsBetter: false, get: (s) => s.peakReconnectsPerWindow });
  const peakCloses = metric(`peak closes in any ${WINDOW_MS} ms after the reload`, samples,
    { unit: 'clients', higherIsBetter: false, get: (s) => s.peakClosesPerWindow });
  const spread = metric('close spread: first to last close', samples, { unit: 'ms', get: (s) => s.closeSpreadMs });
  const moved = metric('reload signal to every client reconnected to a new worker', samples,
    { unit: 'ms', higherIsBetter: false, get: (s) => s.movedMs });
  const errors = metric('errors per run (other close codes, 1006, SSE resets, failed handshakes)', samples,
    { unit: 'errors', higherIsBetter: false, get: (s) => s.errors });
  const corral = samples.corral || [];
  const corralErrors = corral.length && corral.every(Boolean) ? sum(corral.map((s) => s.errors)) : null;
  const share = (m) => {
    const v = m.contenders.corral?.median;
    return Number.isFinite(v) ? Math.round((v / total) * 1000) / 10 : null;
  };
  return {
    raw: samples,
    params: { ...clients, messageEveryMs: MESSAGE_EVERY_MS, closeSpreadS: VARIANTS.map(([n, s]) => `${n}:${s}`).join('/'), runs: ctx.runs, workers: ctx.workers },
    metrics: [peakReconnects, peakCloses, spread, moved, errors],
    targets: [
      target('WebSocket reload: corral errors (close codes other than 1012, 1006, SSE resets, failed handshakes), all runs', corralErrors, '<=', 0),
      target('WebSocket reload: corral peak reconnects per 100 ms, share of clients', share(peakReconnects), '<=', 10, '%'),
      target('WebSocket reload: peak reconnects per 100 ms, close-spread 5 s / 0', ratioOf(peakReconnects, 'corral-spread0'), '<=', 0.25, 'x'),
    ],
    notes: [`close codes seen: ${Object.entries(samples).map(([name, list]) => `${name} ${list.map((s) => (s ? JSON.stringify(s.wsCloseCodes) : 'failed')).join(', ')}`).join('; ')}`],
  };
}
