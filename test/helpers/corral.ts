import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { lstatSync, statSync, unlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CLI, ROOT, app } from './paths.js';
import { freePort } from './ports.js';
import { controlSocketPath } from '../../src/control/path.js';
import { MASTER_ONLY_ENV } from '../../src/systemd/env.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Prefix the command (e.g. systemd-socket-activate ...). */
  wrap?: string[];
}

/**
 * The real CLI in its own process group, with its output collected line by line. `kill`
 * in teardown takes the whole group, so no worker outlives a test.
 */
export class Corral {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;
  private waiters: Array<() => void> = [];

  constructor(args: string[], opts: StartOptions = {}) {
    const cmd = [...(opts.wrap ?? []), process.execPath, CLI, ...args];
    const env = { ...cleanEnv(), ...opts.env };
    this.proc = spawn(cmd[0]!, cmd.slice(1), {
      cwd: opts.cwd ?? ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    for (const stream of [this.proc.stdout!, this.proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        for (const w of this.waiters.splice(0)) w();
      });
    }
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        if (signal !== null) removeStaleSocket(controlSocketPath(this.proc.pid!, env));
        for (const w of this.waiters.splice(0)) w();
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get output(): string {
    return this.lines.join('\n');
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  /** Waits for an output line matching `re`, searching from line `from`. */
  async waitForLine(re: RegExp, timeoutMs = 15_000, from = 0): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.slice(from).find((l) => re.test(l));
      if (line) return line;
      if (this.exit) throw new Error(`corral exited (${JSON.stringify(this.exit)}) before printing ${re}; output:\n${this.output}`);
      if (Date.now() > end) throw new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${this.output}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  async waitReady(timeoutMs = 20_000): Promise<void> {
    await this.waitForLine(/"msg":"ready: /, timeoutMs);
  }

  /** Worker PIDs: the master's children. */
  async workerPids(): Promise<number[]> {
    const { readFileSync } = await import('node:fs');
    try {
      return readFileSync(`/proc/${this.pid}/task/${this.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  async waitExit(timeoutMs = 20_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`corral did not exit within ${timeoutMs} ms; output:\n${this.output}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Teardown: SIGKILL the whole process group if anything is left. */
  kill(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * A master killed by a signal (SIGKILL in a test or in teardown) leaves its control socket
 * behind. Its PID is free to be reused by a later process of this run, whose own candidate
 * paths would then include a file nobody listens on: remove it while it is surely ours.
 */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // none left, or not ours to remove
  }
}

const IGNORED_ENV: string[] = ['PORT', 'WEB_CONCURRENCY', ...MASTER_ONLY_ENV, 'LOGS_DIRECTORY', 'RUNTIME_DIRECTORY', 'JOURNAL_STREAM', 'NODE_TEST_CONTEXT'];

/** The test runner's environment without anything that would change corral's behaviour. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('CORRAL_') || IGNORED_ENV.includes(k)) continue;
    env[k] = v;
  }
  return env;
}

/** Runs the CLI to completion (for check, print-config, reload and failing starts). */
export async function runCli(args: string[], opts: StartOptions & { timeoutMs?: number } = {}): Promise<Exit & { output: string }> {
  const c = new Corral(args, opts);
  try {
    const exit = await c.waitExit(opts.timeoutMs ?? 20_000);
    // let readline deliver the last lines
    await new Promise((r) => setTimeout(r, 20));
    return { ...exit, output: c.output };
  } finally {
    c.kill();
  }
}

/**
 * Starts the hello fixture on a free loopback port with `workers` workers (access log off),
 * waits until it is ready, and registers it for teardown in `started`.
 */
export async function serveHello(started: Corral[], workers: number, extra: string[] = []): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', String(workers), '--access-log', 'off', ...extra, app('hello.mjs')]);
  started.push(c);
  await c.waitReady();
  return { c, port };
}

const NOBODY = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];

/**
 * Run as root in a new mount namespace, before the command: covers $1, the topmost
 * directory above (or at) the checkout $2 that other users cannot enter, with a tmpfs of
 * mode 755, and binds each entry of the real checkout back at its own path. The command
 * then sees the same paths, minus that one barrier, and nothing changes outside. The
 * entries are named relative to the working directory, still the real checkout under the
 * tmpfs; --no-canonicalize keeps mount(8) from turning them into paths that now lead into
 * the tmpfs itself.
 */
const OPEN_CHECKOUT = `set -e
top=$1 root=$2; shift 2
back=$PWD
cd "$root"
mount -t tmpfs -o mode=0755 corral-test "$top"
mkdir -p "$root"
for e in * .[!.]* ..?*; do
  [ -e "$e" ] || continue
  if [ -d "$e" ]; then mkdir "$root/$e"; else : > "$root/$e"; fi
  mount --no-canonicalize --bind "$e" "$root/$e"
done
cd "$back"
exec "$@"`;

/** The topmost directory from / down to `dir` that other users cannot enter. */
function barrier(dir: string): string | undefined {
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const d = '/' + parts.slice(0, i).join('/');
    if ((statSync(d).mode & 0o001) === 0) return d;
  }
  return undefined;
}

/**
 * The `wrap` that runs the CLI as user nobody. When the checkout sits under a directory
 * other users cannot enter (0700, as `mktemp -d` makes), the CLI runs in a private mount
 * namespace where that directory is opened (see OPEN_CHECKOUT); if nobody still cannot
 * read the CLI, it fails at once, saying why.
 */
export function asNobody(): string[] {
  const top = barrier(ROOT);
  const wrap = top ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', OPEN_CHECKOUT, 'open-checkout', top, ROOT, ...NOBODY] : NOBODY;
  const r = spawnSync(wrap[0]!, [...wrap.slice(1), 'test', '-r', CLI]);
  if (r.status !== 0) {
    throw new Error(`user nobody cannot read ${CLI}${top ? ` even with ${top} opened in a private mount namespace` : ''}: ${String(r.stderr).trim() || 'test -r failed'}`);
  }
  return wrap;
}
