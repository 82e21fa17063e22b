import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { cleanEnv } from '../helpers/corral.js';
import { get, load, type LoadResult } from '../helpers/http.js';
import { CLI } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

/** The app under edit: answers its version and the worker's pid. */
function source(version: string): string {
  return `const VERSION = '${version}';\nexport default function handler(req, res) {\n  res.end(VERSION + ' ' + process.pid);\n}\n`;
}

/** `corral dev` in its own process group, stdin a pipe (for `rs`), output collected. */
class Dev {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
    this.proc = spawn(process.execPath, [CLI, 'dev', ...args], { cwd, env: { ...cleanEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    for (const s of [this.proc.stdout!, this.proc.stderr!]) createInterface({ input: s }).on('line', (l) => this.lines.push(l));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get output(): string {
    return this.lines.join('\n');
  }

  count(re: RegExp): number {
    return this.lines.filter((l) => re.test(l)).length;
  }

  async waitFor(re: RegExp, from = 0, timeoutMs = 20_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.lines.findIndex((l, n) => n >= from && re.test(l));
      if (i >= 0) return i;
      if (Date.now() > end) throw new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${this.output}`);
      await sleep(25);
    }
  }

  kill(): void {
    try {
      process.kill(-this.proc.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started: Dev[] = [];
after(() => started.forEach((d) => d.kill()));

async function startDev(version = 'v1', extra: string[] = []): Promise<{ d: Dev; dir: string; file: string; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-dev-'));
  const file = join(dir, 'app.mjs');
  writeFileSync(file, source(version));
  const port = await freePort();
  const d = new Dev(['--bind', `127.0.0.1:${port}`, ...extra, 'app.mjs'], dir);
  started.push(d);
  await d.waitFor(/serving app\.mjs on http:\/\/127\.0\.0\.1:\d+ \(1 worker/);
  return { d, dir, file, port };
}

/** Polls until the app answers with `version` (fresh connections). */
async function waitVersion(port: number, version: string, timeoutMs = 20_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    last = (await get({ port })).body;
    if (last.startsWith(`${version} `)) return last;
    await sleep(20);
  }
  throw new Error(`still answering ${JSON.stringify(last)} after ${timeoutMs} ms, expected ${version}`);
}

function failures(results: LoadResult[]): { failed: number; errors: string[] } {
  return { failed: results.reduce((n, r) => n + r.failed, 0), errors: results.flatMap((r) => r.errors).slice(0, 5) };
}

describe('corral dev', () => {
  test('edits under load: no request fails, and the new code answers after each edit', async () => {
    const { d, file, port } = await startDev('v1');
    let editing = true;
    const keepAlive: LoadResult[] = [];
    const churn: LoadResult[] = [];
    // Steady clients for as long as the edits go on, in bounded batches.
    const clients = Promise.all([
      (async () => { while (editing) keepAlive.push(await load({ port, total: 200, concurrency: 8, keepAlive: true, maxMs: 30_000 })); })(),
      (async () => { while (editing) churn.push(await load({ port, total: 100, concurrency: 4, keepAlive: false, maxMs: 30_000 })); })(),
    ]);
    try {
      for (let v = 2; v <= 5; v++) {
        await sleep(300);
        writeFileSync(file, source(`v${v}`));
        await waitVersion(port, `v${v}`);
      }
    } finally {
      editing = false;
      await clients;
    }
    const sent = [...keepAlive, ...churn].reduce((n, r) => n + r.sent, 0);
    assert.ok(sent >= 300, `the load ran during the edits (${sent} requests)`);
    assert.deepEqual(failures(keepAlive), { failed: 0, errors: [] }, 'keep-alive: no failures');
    assert.deepEqual(failures(churn), { failed: 0, errors: [] }, 'new connections: no failures');
    assert.ok(d.count(/reloaded in \d+ ms/) >= 4, d.output);
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });

  test('a syntax error keeps the old code serving and is shown once with file:line and source; a fix reloads', async () => {
    const { d, file, port } = await startDev('v1');
    writeFileSync(file, `const VERSION = 'v2';\n\nexport default syntax error here\n`);
    await d.waitFor(/reload failed: the last good version keeps serving/);
    for (let i = 0; i < 5; i++) assert.match((await get({ port })).body, /^v1 /, 'the last good worker answers');
    await sleep(500);
    assert.equal(d.count(/app\.mjs:3\b/), 1, `file:line shown exactly once:\n${d.output}`);
    assert.match(d.output, /SyntaxError: Unexpected identifier/);
    assert.match(d.output, /> 3 \| export default syntax error here/, 'the source line is shown');
    assert.equal(d.count(/SyntaxError/), 1, `the error is shown once:\n${d.output}`);
    const from = d.lines.length;
    writeFileSync(file, source('v3'));
    await waitVersion(port, 'v3');
    await d.waitFor(/reloaded in \d+ ms/, from);
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });

  test('a load error in an imported module names that module and line', async () => {
    const { d, dir, file, port } = await startDev('v1');
    writeFileSync(join(dir, 'lib.mjs'), `export function f() {\n  return 1;\n}\nthrow new Error('lib is broken');\n`);
    writeFileSync(file, `import './lib.mjs';\n${source('v2')}`);
    await d.waitFor(/reload failed/);
    assert.match(d.output, /lib\.mjs:4:7 .*lib is broken/);
    assert.match(d.output, /> 4 \| throw new Error\('lib is broken'\);/);
    assert.match((await get({ port })).body, /^v1 /);
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });

  test('rs + Enter reloads by hand', async () => {
    const { d, port } = await startDev('v1');
    const before = (await get({ port })).body;
    const from = d.lines.length;
    d.proc.stdin!.write('rs\n');
    await d.waitFor(/rs: reloading/, from);
    await d.waitFor(/reloaded in \d+ ms/, from);
    const end = Date.now() + 10_000;
    let now = before;
    while (now === before && Date.now() < end) now = (await get({ port })).body;
    assert.match(now, /^v1 \d+$/);
    assert.notEqual(now, before, 'another worker answers after rs');
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });

  test('Ctrl-C (SIGINT to the process group) stops everything promptly', async () => {
    const { d, port } = await startDev('v1');
    await get({ port });
    await sleep(300); // a warm spare is running by now
    const t0 = Date.now();
    process.kill(-d.proc.pid!, 'SIGINT');
    const exit = await d.exited;
    assert.equal(exit.code, 0, d.output);
    assert.ok(Date.now() - t0 < 5000, `exited after ${Date.now() - t0} ms`);
    await sleep(200);
    assert.throws(() => process.kill(-d.proc.pid!, 0), /ESRCH/, 'no process of the group is left (workers, spare)');
  });

  test('an app broken at start is shown, and the first save that fixes it starts serving', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-dev-'));
    const file = join(dir, 'app.mjs');
    writeFileSync(file, `export default function (req, res) {\n  res.end('x'\n}\n`);
    const port = await freePort();
    const d = new Dev(['--bind', `127.0.0.1:${port}`, 'app.mjs'], dir);
    started.push(d);
    await d.waitFor(/waiting for a change/);
    assert.match(d.output, /app\.mjs:\d+/);
    writeFileSync(file, source('v2'));
    await d.waitFor(/serving app\.mjs/);
    await waitVersion(port, 'v2');
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });

  test('access lines on stdout read like "GET /nope 200 ..."; .env changes reload', async () => {
    const { d, dir, port } = await startDev('v1');
    await get({ port, path: '/nope' });
    await d.waitFor(/^GET \/nope 200 \d+ B [\d.]+ m?s$/);
    const from = d.lines.length;
    writeFileSync(join(dir, '.env'), 'GREETING=hi\n');
    await d.waitFor(/\.env changed/, from);
    await d.waitFor(/reloaded in/, from);
    assert.ok(readFileSync(join(dir, '.env'), 'utf8').includes('hi'));
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });

  test('--metrics-bind serves /metrics and /livez; the start prints the settings and the metrics address', async () => {
    const metricsPort = await freePort();
    const { d, port } = await startDev('v1', ['--metrics-bind', `127.0.0.1:${metricsPort}`]);
    assert.match(d.output, new RegExp(`settings: .*\\bbind=127\\.0\\.0\\.1:${port}\\b`), d.output);
    assert.match(d.output, new RegExp(`settings: .*\\bmetrics-bind=127\\.0\\.0\\.1:${metricsPort}\\b`), d.output);
    assert.match(d.output, new RegExp(`metrics on 127\\.0\\.0\\.1:${metricsPort}: /metrics`), d.output);
    await get({ port });
    const metrics = await get({ port: metricsPort, path: '/metrics' });
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^corral_build_info\{/m);
    assert.equal((await get({ port: metricsPort, path: '/livez' })).status, 200);
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });

  test('the workers never see LISTEN_* (nor after a reload, from the warm spare); other variables pass', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-dev-'));
    const keys = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'KEEP_ME'];
    writeFileSync(join(dir, 'app.mjs'), `export default (req, res) => res.end(JSON.stringify(${JSON.stringify(keys)}.map((k) => process.env[k] ?? null)) + ' ' + process.pid);\n`);
    const port = await freePort();
    // LISTEN_PID names another process: the variables are not for corral, which binds itself.
    const d = new Dev(['--bind', `127.0.0.1:${port}`, 'app.mjs'], dir, { LISTEN_FDS: '1', LISTEN_PID: '1', LISTEN_FDNAMES: 'web', KEEP_ME: 'yes' });
    started.push(d);
    await d.waitFor(/serving app\.mjs/);
    const first = (await get({ port })).body;
    assert.match(first, /^\[null,null,null,"yes"\] \d+$/);
    const from = d.lines.length;
    d.proc.stdin!.write('rs\n');
    await d.waitFor(/reloaded in \d+ ms/, from);
    let now = first;
    for (const end = Date.now() + 10_000; now === first && Date.now() < end; ) now = (await get({ port })).body;
    assert.notEqual(now, first, 'a new worker answers');
    assert.match(now, /^\[null,null,null,"yes"\] \d+$/);
    d.proc.kill('SIGINT');
    assert.equal((await d.exited).code, 0);
  });
});
