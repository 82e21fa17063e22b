#!/usr/bin/env node
// Benchmark runner: `node bench/run.mjs <scenario|all> [options]`
// (`npm run bench -- <scenario>`). Each scenario is bench/scenarios/<name>.mjs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, CONTENDERS } from './lib/contenders.mjs';
import { machineInfo, writeResult, writeMarkdown, targetLine, metricTables } from './lib/report.mjs';
import { cleanupAll } from './lib/cleanup.mjs';

export const SCENARIOS = ['keepalive', 'close', 'nginx', 'cpu', 'balance', 'reload', 'startup', 'memory', 'logging', 'dev', 'metrics', 'websocket', 'warm', 'scaling'];

const USAGE = `usage: node bench/run.mjs <scenario|all> [options]
       node bench/run.mjs report [--out DIR]

scenarios: ${SCENARIOS.join(', ')}
report: rebuild RESULTS.md from the stored results (and bench/MISSES.md), running nothing

options:
  --runs N           repetitions per contender (default 5; smoke 1)
  --duration S       seconds of load per run (default 10; smoke 1)
  --warmup S         seconds of warm-up load per contender (default 2; smoke 0)
  --smoke            short runs that fail (exit 1) on any error; for CI
  --workers N        workers per contender (default 2)
  --connections N    wrk connections (default 64)
  --threads N        wrk threads (default 1)
  --requests N       requests for the memory scenario (default 1000000; smoke 20000)
  --contenders LIST  comma-separated subset of: ${CONTENDERS.join(', ')}
  --out DIR          where result JSON and RESULTS.md go
                     (default bench/results and bench/RESULTS.md; smoke: a temp dir)
  --keep-tmp         keep the temp dir with logs and configs
  -h, --help`;

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      runs: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
      smoke: { type: 'boolean', default: false }, workers: { type: 'string' },
      connections: { type: 'string' }, threads: { type: 'string' }, requests: { type: 'string' },
      contenders: { type: 'string' }, out: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) return { help: true };
  const name = positionals[0];
  if (name === 'report') return { reportOnly: true, out: values.out };
  if (name !== 'all' && !SCENARIOS.includes(name)) throw new Error(`unknown scenario '${name}'\n\n${USAGE}`);
  const num = (v, dflt, what) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${what} must be a positive number, got '${v}'`);
    return n;
  };
  const smoke = values.smoke;
  const only = values.contenders ? values.contenders.split(',').map((s) => s.trim()).filter(Boolean) : null;
  // corral-*: a scenario's own variants of corral (warm: corral-cold, corral-cache, corral-warmup).
  for (const c of only || []) if (!CONTENDERS.includes(c) && !c.startsWith('corral-')) throw new Error(`unknown contender '${c}'`);
  return {
    scenarios: name === 'all' ? SCENARIOS : [name],
    smoke,
    runs: Math.round(num(values.runs, smoke ? 1 : 5, 'runs')),
    durationS: num(values.duration, smoke ? 1 : 10, 'duration'),
    warmupS: values.warmup === '0' ? 0 : num(values.warmup, smoke ? 0 : 2, 'warmup'),
    workers: Math.round(num(values.workers, 2, 'workers')),
    connections: Math.round(num(values.connections, 64, 'connections')),
    threads: Math.round(num(values.threads, 1, 'threads')),
    requests: Math.round(num(values.requests, smoke ? 20000 : 1000000, 'requests')),
    only,
    out: values.out,
    keepTmp: values['keep-tmp'],
  };
}

function makeContext(opts, tmp) {
  const errors = [];
  return {
    ...opts,
    tmp,
    errors,
    log: (msg) => console.log(`[bench] ${msg}`),
    fail: (msg) => {
      errors.push(msg);
      console.error(`[bench] ERROR ${msg}`);
    },
  };
}

async function runScenario(name, opts, env) {
  const mod = await import(pathToFileURL(path.join(BENCH_DIR, 'scenarios', `${name}.mjs`)).href);
  const ctx = makeContext(opts, env.tmp);
  const date = new Date().toISOString();
  const t0 = performance.now();
  console.log(`[bench] scenario ${name}: runs=${opts.runs} duration=${opts.durationS}s${opts.smoke ? ' (smoke)' : ''}`);
  let body = { params: {}, metrics: [], targets: [] };
  try {
    body = await mod.default(ctx);
  } catch (err) {
    ctx.fail(`scenario ${name} crashed: ${err.stack || err.message}`);
  }
  const result = {
    scenario: name, order: SCENARIOS.indexOf(name), date, smoke: opts.smoke,
    command: env.command, machine: env.machine, description: mod.description || '',
    elapsedS: Math.round((performance.now() - t0) / 100) / 10,
    params: body.params, metrics: body.metrics, targets: body.targets || [],
    notes: body.notes || [], errors: ctx.errors, raw: body.raw || null,
  };
  const file = writeResult(env.outDir, result);
  for (const m of result.metrics) console.log(`\n${metricTables(m)}\n`);
  for (const t of result.targets) console.log(`[bench] ${targetLine(t)}`);
  console.log(`[bench] ${name}: ${result.elapsedS}s, ${ctx.errors.length} error(s), ${file}`);
  return result;
}

async function main() {
  let opts;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    console.error(err.message);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  if (opts.reportOnly) {
    const outDir = opts.out ? path.resolve(opts.out) : path.join(BENCH_DIR, 'results');
    const mdPath = opts.out ? path.join(outDir, 'RESULTS.md') : path.join(BENCH_DIR, 'RESULTS.md');
    writeMarkdown(outDir, mdPath);
    console.log(`[bench] report: ${mdPath}`);
    return 0;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  // A smoke run must not touch the stored results: its report goes to a
  // temp dir of its own (printed at the end) unless --out says otherwise.
  const outDir = opts.out ? path.resolve(opts.out)
    : (opts.smoke ? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-')) : path.join(BENCH_DIR, 'results'));
  const mdPath = opts.out || opts.smoke ? path.join(outDir, 'RESULTS.md') : path.join(BENCH_DIR, 'RESULTS.md');
  const env = {
    tmp, outDir,
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`,
    machine: await machineInfo(),
  };
  const t0 = performance.now();
  let errors = 0;
  for (const name of opts.scenarios) {
    const result = await runScenario(name, opts, env);
    errors += result.errors.length;
  }
  writeMarkdown(outDir, mdPath);
  console.log(`[bench] report: ${mdPath}`);
  console.log(`[bench] total ${Math.round((performance.now() - t0) / 1000)}s, ${errors} error(s)`);
  if (!opts.keepTmp && errors === 0) fs.rmSync(tmp, { recursive: true, force: true });
  else console.log(`[bench] logs and configs kept in ${tmp}`);
  return opts.smoke && errors > 0 ? 1 : 0;
}

// Interrupted: stop every server the bench started, then exit.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    console.error(`[bench] ${sig}: stopping contenders`);
    await cleanupAll();
    process.exit(130);
  });
}

main().then((code) => { process.exitCode = code; }, async (err) => {
  console.error(err.stack || err.message);
  await cleanupAll();
  process.exitCode = 1;
});
