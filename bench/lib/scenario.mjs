// What every scenario shares: starting its contenders, running them in
// alternation (A B C A B C ...) so slow drifts of the machine hit all of them
// alike, turning samples into summaries and same-repetition ratios, and
// recording errors that make a smoke run fail.
import { startContender } from './contenders.mjs';
import { runWrk } from './wrk.mjs';
import { summarize, pairedRatio } from './stats.mjs';

const SUBJECT = 'corral';

// Contenders a scenario wants, narrowed by --contenders.
export function pick(ctx, wanted) {
  return ctx.only ? wanted.filter((n) => ctx.only.includes(n)) : wanted;
}

// Starts the named contenders one after another, runs body(running) and
// stops them all whatever happens. A contender that fails to start is
// reported and left out.
export async function withContenders(ctx, names, body) {
  const running = new Map();
  try {
    for (const name of names) {
      try {
        ctx.log(`starting ${name}`);
        running.set(name, await startContender(name, { workers: ctx.workers, tmp: ctx.tmp }));
      } catch (err) {
        ctx.fail(`${name} failed to start: ${err.message}`);
      }
    }
    return await body(running);
  } finally {
    for (const [name, c] of running) {
      await c.stop().catch((err) => ctx.fail(`${name} failed to stop: ${err.message}`));
    }
  }
}

// Calls fn(contender, rep) for rep = 0..runs-1, cycling through the
// contenders inside each repetition. Returns {name: [sample per rep]}; a
// failed call leaves null in its slot.
export async function alternate(ctx, running, fn) {
  const samples = {};
  for (const name of running.keys()) samples[name] = [];
  for (let rep = 0; rep < ctx.runs; rep++) {
    for (const [name, c] of running) {
      try {
        samples[name].push(await fn(c, rep));
      } catch (err) {
        ctx.fail(`${name} run ${rep + 1}: ${err.message}`);
        samples[name].push(null);
      }
    }
  }
  return samples;
}

// One warm-up load per contender so the JIT and the kernel's socket caches
// are in the same state for everybody before the first measured run.
export async function warmUp(ctx, running, wrkOptions = {}) {
  if (!ctx.warmupS) return;
  for (const [name, c] of running) {
    try {
      await runWrk({ url: c.url, durationS: ctx.warmupS, ...wrkOptions });
    } catch (err) {
      ctx.fail(`${name} warm-up: ${err.message}`);
    }
  }
}

// A wrk result with socket errors or non-2xx answers is an error in a
// throughput scenario (the reload scenario counts them instead).
export function checkWrk(ctx, name, res, what = 'load') {
  if (res.errors > 0) {
    ctx.fail(`${name} ${what}: ${res.non2xx} non-2xx, socket errors ${JSON.stringify(res.socketErrors)}`);
  }
  return res;
}

// samples: {name: [number|null per rep]} (or objects, read through `get`).
export function metric(label, samples, { unit, higherIsBetter = true, get = (x) => x } = {}) {
  const contenders = {};
  const values = {};
  for (const [name, list] of Object.entries(samples)) {
    values[name] = list.map((s) => (s === null || s === undefined ? null : get(s)));
    contenders[name] = summarize(values[name]);
  }
  const ratios = {};
  if (values[SUBJECT]) {
    for (const peer of Object.keys(values)) {
      if (peer !== SUBJECT) ratios[`${SUBJECT}/${peer}`] = pairedRatio(values[SUBJECT], values[peer]);
    }
  }
  return { label, unit, higherIsBetter, contenders, ratios };
}

// A PASS/MISS line. value null (a contender missing) is a MISS with 'n/a'.
export function target(text, value, op, goal, unit = '') {
  const pass = Number.isFinite(value) && (op === '>=' ? value >= goal : value <= goal);
  return { text, value: Number.isFinite(value) ? value : null, op, goal, unit, pass };
}

export function ratioOf(m, peer) {
  const r = m.ratios[`${SUBJECT}/${peer}`];
  return r ? r.median : null;
}
