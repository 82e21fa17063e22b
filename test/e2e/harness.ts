/**
 * End-to-end harness: a real systemd (PID 1 in private namespaces, see sd-sandbox.sh) per
 * test file, corral installed in it as a package, apps installed by scripts/install.
 *
 * Every wait is bounded, every process started here is killed by its process group, and
 * the sandbox is powered off in an after() hook, which node:test runs even when a test or
 * a before() hook failed.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import type { Tally } from './load-core.js';
import { alive } from '../helpers/proc.js';

/** The repository (this file runs from dist/test/e2e/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SANDBOX_SH = join(REPO, 'test/e2e/sd-sandbox.sh');
export const FIXTURES = join(REPO, 'test/e2e/fixtures');
/** The compiled load client, run inside the sandbox. */
export const LOAD_JS = join(REPO, 'dist/test/e2e/load.js');
/** Shared between host and sandboxes at the same path. */
export const BASE = process.env.SDS_BASE ?? '/tmp/corral-e2e';
/** Where a test installs corral inside its sandbox, as `npm install -g` would. */
export const CORRAL_HOME = '/usr/local/lib/node_modules/corral';
export const CLI = `${CORRAL_HOME}/dist/src/cli.js`;

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ExecOptions {
  /** Kill the command (its whole process group) after this long. Default 120 s. */
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

/** Why the e2e tests cannot run here, or undefined when they can. */
export function cannotRun(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (namespaces, cgroups, a nested systemd)';
  if (!existsSync('/lib/systemd/systemd')) return 'needs systemd installed (/lib/systemd/systemd)';
  if (!existsSync(join(REPO, 'dist/src/cli.js'))) return 'needs corral built (dist/src/cli.js)';
  return undefined;
}

function describeResult(cmd: readonly string[], r: ExecResult): string {
  const tail = (s: string) => s.trim().split('\n').slice(-40).join('\n');
  return `\`${cmd.join(' ')}\` exited ${r.code ?? r.signal} after ${r.ms} ms\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}`;
}

export class CommandError extends Error {
  constructor(readonly cmd: readonly string[], readonly result: ExecResult) {
    super(describeResult(cmd, result));
  }
}

/** Runs a host command in its own process group; resolves when it exits or times out. */
export function run(cmd: readonly string[], opts: ExecOptions & SpawnOptions = {}): Promise<ExecResult> {
  const { timeoutMs = 120_000, input, ...spawnOpts } = opts;
  const t0 = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { ...spawnOpts, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n[harness] killed after ${timeoutMs} ms`;
      resolvePromise({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(input ?? '');
  });
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls fn until it returns a value other than undefined/false; throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** Sandboxes of this process that are (maybe) up: powered off if the process is interrupted. */
const live = new Set<Sandbox>();
let trapped = false;

function trapSignals(): void {
  if (trapped) return;
  trapped = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const sb of live) sb.downSync();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export class Sandbox {
  /** Host directory shared with the sandbox (same path inside) for this instance's files. */
  readonly dir: string;
  private readonly children = new Set<ChildProcess>();
  private isUp = false;

  constructor(readonly name: string) {
    this.dir = join(BASE, 'work', name);
  }

  /** For signal handlers: kill what we started and power off, synchronously. */
  downSync(): void {
    for (const child of this.children) killGroup(child, 'SIGKILL');
    if (!this.isUp) return;
    this.isUp = false;
    spawnSync('bash', [SANDBOX_SH, 'down'], { env: this.env(), stdio: 'inherit', timeout: 120_000 });
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, SDS_NAME: this.name, SDS_BASE: BASE, SDS_BIND: REPO };
  }

  async up(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    this.isUp = true; // from here on, down() must run even if up fails half-way
    live.add(this);
    trapSignals();
    const r = await run(['bash', SANDBOX_SH, 'up'], { env: this.env(), timeoutMs: 90_000 });
    if (r.code !== 0) throw new CommandError(['sd-sandbox.sh', 'up'], r);
  }

  async down(): Promise<void> {
    for (const child of this.children) killGroup(child, 'SIGKILL');
    this.children.clear();
    if (!this.isUp) return;
    this.isUp = false;
    live.delete(this);
    const r = await run(['bash', SANDBOX_SH, 'down'], { env: this.env(), timeoutMs: 120_000 });
    if (r.code !== 0) throw new CommandError(['sd-sandbox.sh', 'down'], r);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs cmd inside the sandbox; resolves with its result whatever the exit code. */
  exec(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(['bash', SANDBOX_SH, 'exec', ...cmd], { ...opts, env: { ...this.env(), ...opts.env } });
  }

  /** Runs cmd inside the sandbox and throws unless it exits 0; resolves with stdout. */
  async ok(cmd: readonly string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, opts);
    if (r.code !== 0) throw new CommandError(cmd, r);
    return r.stdout;
  }

  /** A bash script inside the sandbox (set -euo pipefail); throws unless it exits 0. */
  sh(script: string, opts: ExecOptions = {}): Promise<string> {
    return this.ok(['bash', '-c', `set -euo pipefail\n${script}`], opts);
  }

  /** Starts a long-running command inside the sandbox; killed at down() if still running. */
  spawn(cmd: readonly string[]): RunningCommand {
    const child = spawn('bash', [SANDBOX_SH, 'exec', ...cmd], {
      env: this.env(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.on('close', () => this.children.delete(child));
    return new RunningCommand(cmd, child);
  }

  /** systemctl show -P PROP UNIT */
  async prop(unit: string, prop: string): Promise<string> {
    return (await this.ok(['systemctl', 'show', '-P', prop, unit])).trim();
  }

  /** The journal of a unit (all of this boot), as text; empty when --grep finds nothing. */
  async journal(unit: string, ...args: string[]): Promise<string> {
    const cmd = ['journalctl', '--no-pager', '-q', '-u', unit, ...args];
    const r = await this.exec(cmd);
    if (r.code === 0 || (r.code === 1 && r.stdout === '' && args.includes('--grep'))) return r.stdout;
    throw new CommandError(cmd, r);
  }
}

export class RunningCommand {
  private stdout = '';
  private stderr = '';
  readonly done: Promise<ExecResult>;

  constructor(readonly cmd: readonly string[], readonly child: ChildProcess) {
    const t0 = Date.now();
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.done = new Promise((resolvePromise) => {
      child.on('close', (code, signal) =>
        resolvePromise({ code, signal, stdout: this.stdout, stderr: this.stderr, ms: Date.now() - t0 }),
      );
    });
  }

  /** Waits for the command to exit, killing it after timeoutMs. */
  async wait(timeoutMs: number): Promise<ExecResult> {
    const timer = setTimeout(() => killGroup(this.child, 'SIGKILL'), timeoutMs);
    try {
      return await this.done;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    killGroup(this.child, 'SIGKILL');
  }
}

/** A name unique to this test file and process: [A-Za-z0-9_.-]. */
export function sandboxName(fileUrl: string): string {
  const file = basename(fileURLToPath(fileUrl)).replace(/\.test\.js$/, '').replace(/[^A-Za-z0-9_.-]/g, '-');
  return `corral-${file}-${process.pid}`;
}

/** Powers off sandboxes of this test file left by earlier runs whose process is gone. */
/**
 * Powers off the sandboxes of earlier runs whose test process is gone: each one in BASE/run
 * whose name `owner` maps to the PID of the process that made it, when that is neither this
 * process nor alive.
 */
export async function reapStale(owner: (name: string) => number | undefined): Promise<void> {
  let names: string[] = [];
  try {
    names = readdirSync(join(BASE, 'run'));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = owner(name);
    if (pid === undefined || pid === process.pid || alive(pid)) continue;
    await run(['bash', SANDBOX_SH, 'down'], { env: { ...process.env, SDS_NAME: name, SDS_BASE: BASE } });
    rmSync(join(BASE, 'work', name), { recursive: true, force: true });
  }
}

/** The owner of this test file's sandboxes: NAME-PID. */
function fileSandboxOwner(fileUrl: string): (name: string) => number | undefined {
  const prefix = sandboxName(fileUrl).replace(/-\d+$/, '-');
  return (name) => {
    if (!name.startsWith(prefix)) return undefined;
    const pid = Number(name.slice(prefix.length));
    return Number.isInteger(pid) ? pid : undefined;
  };
}

/**
 * Boots a sandbox for this test file before its tests (with corral installed in it) and
 * powers it off after them. Returns an accessor: the sandbox exists once before() ran.
 */
export function useSandbox(fileUrl: string): () => Sandbox {
  const sb = new Sandbox(sandboxName(fileUrl));
  let ready = false;
  before(async () => {
    await reapStale(fileSandboxOwner(fileUrl));
    await sb.up();
    await installCorral(sb);
    ready = true;
  }, { timeout: 180_000 });
  after(async () => {
    await saveJournal(sb, fileUrl).catch(() => {});
    await sb.down();
  }, { timeout: 180_000 });
  return () => {
    if (!ready) throw new Error(`sandbox ${sb.name} is not up`);
    return sb;
  };
}

/** Keeps the sandbox's whole journal in BASE/logs/FILE.journal, for a failure's post-mortem. */
async function saveJournal(sb: Sandbox, fileUrl: string): Promise<void> {
  const file = join(BASE, 'logs', `${sandboxName(fileUrl).replace(/-\d+$/, '')}.journal`);
  mkdirSync(dirname(file), { recursive: true });
  await sb.ok(['sh', '-c', `journalctl --no-pager -o short-precise > '${file}'`], { timeoutMs: 60_000 });
}

/**
 * Installs corral in the sandbox as a global npm install would place it: the repository is
 * bind-mounted read-only at CORRAL_HOME (the sandbox's own mount namespace; the host does
 * not see it).
 */
export async function installCorral(sb: Sandbox): Promise<void> {
  // Entry by entry on a 755 tmpfs rather than the checkout as a whole: the services' users
  // must enter CORRAL_HOME even when the checkout itself is 0700 (a clone made in mktemp -d).
  await sb.sh(`
    mkdir -p ${CORRAL_HOME}
    mount -t tmpfs -o mode=0755 corral-home ${CORRAL_HOME}
    for e in ${REPO}/* ${REPO}/.[!.]* ${REPO}/..?*; do
      [ -e "$e" ] || continue
      n=\${e##*/}
      if [ -d "$e" ]; then mkdir "${CORRAL_HOME}/$n"; else : > "${CORRAL_HOME}/$n"; fi
      mount --bind "$e" "${CORRAL_HOME}/$n"
      mount -o remount,bind,ro "${CORRAL_HOME}/$n"
    done
    mount -o remount,ro ${CORRAL_HOME}
    test -f ${CLI}
  `);
}

export interface AppOptions {
  name: string;
  /** Listening: a TCP port on 127.0.0.1, else the default unix socket. */
  port?: number;
  workers?: number;
  gracefulTimeout?: number;
  env?: Record<string, string>;
  /** The app's version string (version.txt). */
  version?: string;
  /** More arguments for scripts/install. */
  extraArgs?: string[];
}

/** Deploys the fixture app to /srv/NAME and installs it with scripts/install. */
export async function installApp(sb: Sandbox, o: AppOptions): Promise<string> {
  await sb.sh(`
    install -d -m 0755 /srv/${o.name}
    install -m 0644 ${FIXTURES}/app.mjs /srv/${o.name}/app.mjs
    printf '%s\\n' '${o.version ?? 'v1'}' > /srv/${o.name}/version.txt
  `);
  const args = [`${CORRAL_HOME}/scripts/install`, '--name', o.name, '--app', `/srv/${o.name}/app.mjs`];
  if (o.port !== undefined) args.push('--port', String(o.port));
  if (o.workers !== undefined) args.push('--workers', String(o.workers));
  if (o.gracefulTimeout !== undefined) args.push('--graceful-timeout', String(o.gracefulTimeout));
  for (const [k, v] of Object.entries(o.env ?? {})) args.push('--env', `${k}=${v}`);
  args.push(...(o.extraArgs ?? []));
  return sb.ok(args);
}

/** Replaces the deployed app's version (read by new workers at load). */
export async function setVersion(sb: Sandbox, name: string, version: string): Promise<void> {
  await sb.sh(`printf '%s\\n' '${version}' > /srv/${name}/version.txt`);
}

export interface LoadOptions {
  url?: string;
  socket?: string;
  path?: string;
  concurrency?: number;
  requests: number;
  seconds: number;
  keepAlive?: boolean;
  /** The run stops early once this file exists (host path under BASE). */
  stopFile?: string;
  progressFile?: string;
  tag?: string;
  /** Send `X-Request-Id: TAG-N` with request N. */
  requestId?: boolean;
}

/** What test/e2e/load.ts prints. */
export interface LoadResult extends Tally {
  bodies: Record<string, number>;
  samples: string[];
}

/** Starts the load client inside the sandbox (its network namespace: loopback only). */
export function startLoad(sb: Sandbox, o: LoadOptions): { running: RunningCommand; result: () => Promise<LoadResult> } {
  const args = ['node', LOAD_JS, '--requests', String(o.requests), '--seconds', String(o.seconds)];
  if (o.url) args.push('--url', o.url);
  if (o.socket) args.push('--socket', o.socket);
  if (o.path) args.push('--path', o.path);
  if (o.concurrency) args.push('--concurrency', String(o.concurrency));
  if (o.keepAlive) args.push('--keepalive');
  if (o.stopFile) args.push('--stop-file', o.stopFile);
  if (o.progressFile) args.push('--progress-file', o.progressFile);
  if (o.tag) args.push('--tag', o.tag);
  if (o.requestId) args.push('--request-id');
  const running = sb.spawn(args);
  return {
    running,
    result: async () => {
      const r = await running.wait((o.seconds + 30) * 1000);
      if (r.code !== 0) throw new CommandError(args, r);
      return JSON.parse(r.stdout) as LoadResult;
    },
  };
}

/** Requests completed so far by a load run with a progress file. */
export function progress(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8')) || 0;
  } catch {
    return 0;
  }
}

/** One HTTP GET from inside the sandbox; resolves with status and body. */
export async function get(sb: Sandbox, target: { url?: string; socket?: string; path?: string }, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  const args = ['curl', '-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), '-o', '-', '-w', '\n%{http_code}'];
  if (target.socket) args.push('--unix-socket', target.socket, `http://localhost${target.path ?? '/'}`);
  else args.push(`${target.url}${target.path ?? ''}`);
  const out = await sb.ok(args, { timeoutMs: timeoutMs + 5000 });
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i).trimEnd() };
}
