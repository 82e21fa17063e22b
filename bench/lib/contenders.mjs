// The servers under test. Each is started by the bench on 127.0.0.1 with a
// free port, serves bench/apps/hello.mjs with the same number of workers,
// and is stopped by the pid the bench started (escalating to its process
// group), so nothing the bench did not start is ever signalled.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.mjs';
import { waitFor200 } from './http.mjs';
import { descendants, isAlive, readStat, sleep } from './proc.mjs';
import { onCleanup } from './cleanup.mjs';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = path.resolve(BENCH_DIR, '..');
export const HELLO_APP = path.join(BENCH_DIR, 'apps', 'hello.mjs');
const CLUSTER_APP = path.join(BENCH_DIR, 'apps', 'cluster.mjs');
// BENCH_CORRAL_CLI points at another build of the CLI (to compare two).
export const CORRAL_CLI = process.env.BENCH_CORRAL_CLI || path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

// BENCH_BASELINE_CLI adds 'corral-base': that build run beside the current one in the
// same repetitions, so a change to corral is judged by same-run ratios, not by
// figures from another day.
const BASELINE_CLI = process.env.BENCH_BASELINE_CLI;

export const CONTENDERS = ['corral', ...(BASELINE_CLI ? ['corral-base'] : []), 'single', 'cluster-rr', 'cluster-none', 'pm2'];
const HOST = '127.0.0.1';
const STOP_GRACE_MS = 15000;

// Environment for every contender: the caller's, minus anything that would
// make a contender think systemd started it, plus the bench's own settings.
function baseEnv(extra) {
  const env = { ...process.env, ...extra };
  for (const key of ['NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'WATCHDOG_USEC', 'WATCHDOG_PID']) {
    delete env[key];
  }
  return env;
}

// pm2 is a devDependency of the repo; BENCH_DEPS names another prefix
// (a directory holding node_modules/pm2) for runs outside a full install.
export function resolvePeer(pkg) {
  const roots = [REPO_ROOT, process.env.BENCH_DEPS].filter(Boolean);
  for (const root of roots) {
    try {
      return path.dirname(createRequire(path.join(root, 'package.json')).resolve(`${pkg}/package.json`));
    } catch { /* try the next root */ }
  }
  throw new Error(`${pkg} is not installed: run \`npm install\` in ${REPO_ROOT} (it is a devDependency), `
    + 'or set BENCH_DEPS to a prefix where it is installed');
}

function tail(file, lines = 15) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function readLines(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export class Contender {
  constructor(name, { workers, tmp, port }) {
    this.name = name;
    this.workers = workers;
    this.port = port;
    this.dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
    this.statsDir = path.join(this.dir, 'stats');
    fs.mkdirSync(this.statsDir);
    this.logFile = path.join(this.dir, 'out.log');
    this.child = null;
    this.url = `http://${HOST}:${port}/`;
  }

  appEnv(extra = {}) {
    return baseEnv({ BENCH_STATS_DIR: this.statsDir, ...extra });
  }

  // Spawns in a new process group so teardown can reach every descendant.
  spawnLogged(command, args, env) {
    const out = fs.openSync(this.logFile, 'a');
    const child = spawn(command, args, { env, detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.on('exit', (code, signal) => { child.exitInfo = { code, signal }; });
    child.on('error', (err) => { child.exitInfo = { error: err.message }; });
    return child;
  }

  // Launch-to-first-200 in ms.
  async start() {
    this.launchedAt = performance.now();
    await this.launch();
    await waitFor200(this.port, { abort: () => this.whyDead(), deadlineMs: 30000 });
    this.startupMs = performance.now() - this.launchedAt;
    return this;
  }

  whyDead() {
    const info = this.child && this.child.exitInfo;
    if (!info) return null;
    return `${this.name} exited early (${JSON.stringify(info)}); log ${this.logFile}:\n${tail(this.logFile)}`;
  }

  rootPid() { return this.child.pid; }

  masterPid() { return this.rootPid(); }

  // The processes that make up the server: its root and all descendants.
  serverPids() {
    const root = this.rootPid();
    return root && isAlive(root) ? [root, ...descendants(root)] : [];
  }

  // Processes running the app: those that registered in the stats dir and
  // still belong to this server.
  workerPids() {
    const mine = new Set(this.serverPids());
    return fs.readdirSync(this.statsDir)
      .map((f) => Number.parseInt(f, 10))
      .filter((pid) => mine.has(pid) && isAlive(pid));
  }

  async waitWorkers(n = this.workers, deadlineMs = 20000) {
    const t0 = performance.now();
    while (performance.now() - t0 < deadlineMs) {
      const pids = this.workerPids();
      if (pids.length >= n) return pids;
      await sleep(20);
    }
    throw new Error(`${this.name}: ${n} workers expected, ${this.workerPids().length} registered`);
  }

  // Per-worker counters from the app (see apps/hello.mjs): each worker
  // appends a line to its own file on SIGUSR2. Returns Map pid -> {conns, reqs}.
  async readCounts(deadlineMs = 5000) {
    const files = new Map(this.workerPids().map((pid) => [pid, path.join(this.statsDir, `${pid}.ndjson`)]));
    const before = new Map([...files.keys()].map((pid) => [pid, readLines(files.get(pid)).length]));
    const pids = [...files.keys()].filter((pid) => {
      try {
        process.kill(pid, 'SIGUSR2');
        return true;
      } catch {
        return false; // exited since it was listed
      }
    });
    const t0 = performance.now();
    const out = new Map();
    while (out.size < pids.length) {
      for (const pid of pids) {
        const lines = readLines(files.get(pid));
        if (!out.has(pid) && lines.length > before.get(pid)) out.set(pid, JSON.parse(lines[lines.length - 1]));
      }
      if (out.size < pids.length && performance.now() - t0 > deadlineMs) {
        throw new Error(`${this.name}: counters of ${pids.length - out.size} worker(s) did not arrive`);
      }
      await sleep(10);
    }
    return out;
  }

  async reload() {
    throw new Error(`${this.name} has no reload action`);
  }

  async stop() {
    const root = this.rootPid();
    if (!root) return;
    const known = snapshot(this.serverPids());
    try { process.kill(root, 'SIGTERM'); } catch { /* already gone */ }
    await waitGone(known.slice(0, 1), STOP_GRACE_MS);
    killLeftovers(known, known[0]);
    await waitGone(known, 5000);
  }
}

// Pids with their start times, so a pid the kernel has reused for some
// other process after ours exited is never signalled.
function snapshot(pids) {
  return pids.map((pid) => ({ pid, starttime: readStat(pid)?.starttime }));
}

function stillOurs({ pid, starttime }) {
  const st = readStat(pid);
  return st !== null && st.starttime === starttime && st.state !== 'Z';
}

// SIGKILL to each snapshotted process still alive, and to the process
// group of the bench's launcher while that launcher (the group leader) is
// still ours: a group id is never signalled once it could be reused.
function killLeftovers(known, leader) {
  if (leader && stillOurs(leader)) {
    try { process.kill(-leader.pid, 'SIGKILL'); } catch { /* group is empty */ }
  }
  for (const p of known) {
    if (stillOurs(p)) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* raced with exit */ }
    }
  }
}

async function waitGone(known, deadlineMs) {
  const t0 = performance.now();
  while (known.some(stillOurs) && performance.now() - t0 < deadlineMs) await sleep(20);
}

class Corral extends Contender {
  async launch() {
    const cli = this.name === 'corral-base' ? BASELINE_CLI : CORRAL_CLI;
    if (!fs.existsSync(cli)) {
      throw new Error(`corral is not built: ${cli} is missing (run \`npm run build\`)`);
    }
    const args = [cli, '--bind', `${HOST}:${this.port}`, '--workers', String(this.workers),
      '--access-log', 'off', HELLO_APP];
    this.child = this.spawnLogged(process.execPath, args, this.appEnv());
  }

  async reload() {
    process.kill(this.rootPid(), 'SIGHUP');
  }
}

class Single extends Contender {
  constructor(name, opts) {
    super(name, { ...opts, workers: 1 });
  }

  async launch() {
    const env = this.appEnv({ BENCH_PORT: String(this.port), BENCH_HOST: HOST });
    this.child = this.spawnLogged(process.execPath, [HELLO_APP], env);
  }

  masterPid() { return null; }
}

class NodeCluster extends Contender {
  constructor(name, opts) {
    super(name, opts);
    this.policy = name === 'cluster-none' ? 'none' : 'rr';
  }

  async launch() {
    const env = this.appEnv({
      BENCH_PORT: String(this.port), BENCH_HOST: HOST,
      BENCH_WORKERS: String(this.workers), BENCH_POLICY: this.policy,
    });
    this.child = this.spawnLogged(process.execPath, [CLUSTER_APP], env);
  }
}

class Pm2 extends Contender {
  constructor(name, opts) {
    super(name, opts);
    this.home = path.join(this.dir, 'pm2-home');
    this.appName = 'bench-hello';
  }

  env() {
    return this.appEnv({
      PM2_HOME: this.home,
      PM2_DISABLE_VERSION_CHECK: 'true',
      PM2_NO_INTERACTION: 'true',
      BENCH_PORT: String(this.port),
      BENCH_HOST: HOST,
    });
  }

  bin() {
    return path.join(resolvePeer('pm2'), 'bin', 'pm2');
  }

  pm2(args, timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [this.bin(), ...args], { env: this.env(), timeout: timeoutMs },
        (err, stdout, stderr) => (err ? reject(new Error(`pm2 ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)));
    });
  }

  async launch() {
    const bin = this.bin();
    const args = [bin, 'start', HELLO_APP, '-i', String(this.workers), '--name', this.appName];
    this.child = this.spawnLogged(process.execPath, args, this.env());
  }

  // The pm2 daemon ("God") is the server's root: it forks the workers.
  rootPid() {
    if (this.godPid) return this.godPid;
    try {
      this.godPid = Number(fs.readFileSync(path.join(this.home, 'pm2.pid'), 'utf8').trim()) || null;
    } catch {
      return null;
    }
    return this.godPid;
  }

  async reload() {
    await this.pm2(['reload', this.appName]);
  }

  async stop() {
    const known = snapshot(this.serverPids());
    try {
      await this.pm2(['kill'], STOP_GRACE_MS);
    } catch { /* fall through to killing by pid */ }
    await waitGone(known.slice(0, 1), 5000);
    // The pm2 CLI has exited: its group is not the daemon's.
    killLeftovers(known, null);
    await waitGone(known, 5000);
  }

  // The CLI exits once the app is started; a non-zero exit is a failure.
  whyDead() {
    const info = this.child && this.child.exitInfo;
    if (!info || info.code === 0) return null;
    return `pm2 start failed (${JSON.stringify(info)}); log ${this.logFile}:\n${tail(this.logFile)}`;
  }
}

const KINDS = { corral: Corral, 'corral-base': Corral, single: Single, 'cluster-rr': NodeCluster, 'cluster-none': NodeCluster, pm2: Pm2 };

// Starts one contender and waits for its first 200. On failure everything
// it started is stopped before the error propagates.
export async function startContender(name, { workers = 2, tmp }) {
  const Kind = KINDS[name];
  if (!Kind) throw new Error(`unknown contender ${name} (known: ${CONTENDERS.join(', ')})`);
  return launchContender(new Kind(name, { workers, tmp, port: await freePort(HOST) }));
}

// Starts a contender object (a built-in one, or a subclass of Contender
// with its own launch(), for comparing variants of a server).
export async function launchContender(c) {
  const stop = c.stop.bind(c);
  const forget = onCleanup(() => (c.child ? stop() : undefined));
  c.stop = async () => {
    forget();
    if (c.child) await stop();
  };
  try {
    await c.start();
  } catch (err) {
    await c.stop().catch(() => {});
    throw err;
  }
  return c;
}
