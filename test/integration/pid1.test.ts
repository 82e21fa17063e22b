/**
 * corral as PID 1, as in a container started without an init: the real CLI runs as the
 * first process of a new PID namespace (`unshare --pid --fork --mount-proc`). Node cannot
 * reap the orphans it adopts, so the master says so at start; signals, `corral reload
 * --wait 1` and `corral status 1` work. Under tini (PID 1, corral PID 2) the orphans are
 * reaped and signals still reach corral. Alone and under tini, QUIT drains (the request in flight
 * completes) and INT stops at once, with exit 0 and every worker stopped before the master.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral, runCli } from '../helpers/corral.js';
import { get, held, waitHttp } from '../helpers/http.js';
import { app } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { alive } from '../helpers/proc.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = process.platform !== 'linux'
  ? 'needs Linux (PID namespaces)'
  : process.getuid?.() !== 0
    ? 'needs root: a new PID namespace (unshare --pid) is for root only'
    : !has('unshare') || !has('nsenter')
      ? 'needs unshare and nsenter (Debian package util-linux)'
      : undefined;
const noTini = has('tini') ? undefined : 'needs tini (Debian package tini; scripts/setup installs it)';

const UNSHARE = ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc'];
const ORPHANS = 30;

/** Host PID of the namespace's PID 1: the only child of unshare. */
async function nsInit(c: Corral): Promise<number> {
  for (let i = 0; i < 100; i++) {
    try {
      const kids = readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim();
      if (kids) return Number(kids.split(/\s+/)[0]);
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('unshare started no child');
}

/** Zombies whose parent lives in the PID namespace of host process `init`. */
function zombiesIn(init: number): number {
  const ns = readlinkSync(`/proc/${init}/ns/pid`);
  const members = new Set<number>();
  const zombies: Array<{ pid: number; ppid: number }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') zombies.push({ pid: Number(name), ppid: Number(ppid) });
      else if (readlinkSync(`/proc/${name}/ns/pid`) === ns) members.add(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return zombies.filter((z) => members.has(z.ppid)).length;
}

/** Polls until fn() holds; false if it still does not after timeoutMs. */
async function eventually(fn: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return fn();
}

/** Host PIDs of the children of host process `pid`. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A host process's PID inside its own PID namespace (the last NSpid field). */
function nsPid(hostPid: number): number {
  const line = readFileSync(`/proc/${hostPid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
  return Number(line!.trim().split(/\s+/).at(-1));
}


/** The master's PID as the namespace sees it, from its own log lines. */
function innerMasterPid(c: Corral): number {
  for (const line of c.lines) {
    const m = /"pid":(\d+),"role":"master"/.exec(line);
    if (m) return Number(m[1]);
  }
  throw new Error(`no master log line:\n${c.output}`);
}

describe('corral as PID 1 of a PID namespace (a container without an init)', { skip, timeout: 120_000 }, () => {
  const started: Corral[] = [];
  // A private temp directory: the control socket is corral-PID.sock there, and every
  // namespace has a PID 1.
  const tmp = mkdtempSync(join(tmpdir(), 'corral-pid1-'));
  after(() => {
    for (const c of started) c.kill();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function start(wrap: string[], fixture = 'orphans.mjs', workers = 1): Promise<{ c: Corral; port: number; init: number }> {
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', String(workers), '--access-log', 'off', app(fixture)], {
      wrap, env: { TMPDIR: tmp },
    });
    started.push(c);
    await c.waitReady();
    await waitHttp(port);
    return { c, port, init: await nsInit(c) };
  }

  /** `corral reload --wait PID` run inside the namespace of host process `init`. */
  function reloadInside(init: number, pid: number) {
    return runCli(['reload', '--wait', String(pid)], {
      wrap: ['nsenter', '-t', String(init), '-p', '-m', '--'], env: { TMPDIR: tmp }, timeoutMs: 30_000,
    });
  }

  test('without an init: a warning at start says orphans stay zombies and how to fix it; reload --wait 1, status 1 and SIGTERM work', async (t) => {
    const { c, port, init } = await start(UNSHARE);
    assert.equal(innerMasterPid(c), 1, 'the master is PID 1 of the namespace');
    const warning = c.lines.find((l) => /PID 1/.test(l));
    assert.ok(warning, `no PID 1 warning at start:\n${c.output}`);
    assert.match(warning, /"level":"warn"/, 'logged as a warning');
    assert.match(warning, /zombies/);
    assert.match(warning, /docker run --init/);
    assert.match(warning, /tini/);

    const r = await get({ port, path: `/orphans?n=${ORPHANS}` });
    assert.equal(r.status, 200);
    await new Promise((res) => setTimeout(res, 1000));
    t.diagnostic(`${zombiesIn(init)} zombies under corral as PID 1 after ${ORPHANS} orphans (Node cannot reap adopted processes)`);

    const before = (await get({ port })).body;
    const reload = await reloadInside(init, 1);
    assert.equal(reload.code, 0, reload.output);
    assert.match(reload.output, /reload #1 done/);
    assert.notEqual((await get({ port })).body, before, 'a new worker serves after the reload');
    assert.equal((await get({ port })).status, 200);

    const status = await runCli(['status', '--json', '1'], { wrap: ['nsenter', '-t', String(init), '-p', '-m', '--'], env: { TMPDIR: tmp }, timeoutMs: 30_000 });
    assert.equal(status.code, 0, status.output);
    const st = JSON.parse(status.output) as { master: { pid: number; generation: number } };
    assert.equal(st.master.pid, 1, 'status 1 asks the master that is PID 1');
    assert.equal(st.master.generation, 2);

    process.kill(init, 'SIGTERM');
    const exit = await c.waitExit(30_000);
    assert.deepEqual(exit, { code: 0, signal: null }, c.output);
    assert.match(c.output, /drain/i, 'SIGTERM drained');
  });

  test('under tini: orphans are reaped, reload --wait reaches corral, SIGTERM to tini drains corral', { skip: noTini }, async () => {
    const { c, port, init } = await start([...UNSHARE, 'tini', '--']);
    const pid = innerMasterPid(c);
    assert.notEqual(pid, 1, 'tini is PID 1, corral its child');
    assert.ok(!c.lines.some((l) => /PID 1/.test(l)), 'no PID 1 warning when corral is not PID 1');

    const r = await get({ port, path: `/orphans?n=${ORPHANS}` });
    assert.equal(r.status, 200);
    assert.ok(await eventually(() => zombiesIn(init) === 0, 5000), `${zombiesIn(init)} zombies left under tini`);

    const before = (await get({ port })).body;
    const reload = await reloadInside(init, pid);
    assert.equal(reload.code, 0, reload.output);
    assert.match(reload.output, /reload #1 done/);
    assert.notEqual((await get({ port })).body, before, 'a new worker serves after the reload');

    process.kill(init, 'SIGTERM');
    const exit = await c.waitExit(30_000);
    assert.deepEqual(exit, { code: 0, signal: null }, c.output);
    assert.match(c.output, /drain/i, 'SIGTERM reached corral through tini');
  });

  for (const [mode, wrap] of [['alone', UNSHARE], ['under tini', [...UNSHARE, 'tini', '--']]] as const) {
    const modeSkip = mode === 'under tini' ? noTini : undefined;

    /** corral with 2 workers and one request in flight; the master's and workers' host PIDs. */
    async function busy(ms: number) {
      const { c, port, init } = await start([...wrap], 'hello.mjs', 2);
      const master = mode === 'alone' ? init : childrenOf(init)[0]!;
      assert.equal(nsPid(master), innerMasterPid(c), 'the master found on the host');
      const workers = childrenOf(master);
      assert.equal(workers.length, 2, 'two workers');
      const inflight = (await held({ port, path: `/slow?ms=${ms}&flush=1`, timeoutMs: 30_000 })).done.catch((e: Error) => e); // in a worker now
      return { c, init, workers, inner: workers.map(nsPid), inflight };
    }

    /** Every worker's stop is logged before the master's exit, and none is left. */
    function workersStopped(c: Corral, workers: number[], inner: number[]): void {
      const last = c.lines.findIndex((l) => /all workers stopped; exiting/.test(l));
      assert.ok(last >= 0, `the master waited for its workers:\n${c.output}`);
      for (const pid of inner) {
        assert.ok(c.lines.slice(0, last).some((l) => new RegExp(`worker ${pid} \\(.*\\) (stopped|exited|killed)`).test(l)), `worker ${pid} stopped before the master exited:\n${c.output}`);
      }
      assert.ok(workers.every((p) => !alive(p)), 'no worker outlives the master');
    }

    test(`${mode}: SIGQUIT drains (the request in flight completes), exit 0, every worker stopped`, { skip: modeSkip }, async () => {
      const { c, init, workers, inner, inflight } = await busy(2000);
      process.kill(init, 'SIGQUIT');
      const reply = await inflight;
      assert.ok(!(reply instanceof Error), `the request in flight failed: ${String(reply)}`);
      assert.equal(reply.status, 200);
      assert.deepEqual(await c.waitExit(30_000), { code: 0, signal: null }, c.output);
      assert.match(c.output, /SIGQUIT: graceful shutdown/);
      workersStopped(c, workers, inner);
    });

    test(`${mode}: SIGINT stops at once (the 20-second request is cut), exit 0, every worker stopped`, { skip: modeSkip }, async () => {
      const { c, init, workers, inner, inflight } = await busy(20_000);
      const t0 = Date.now();
      process.kill(init, 'SIGINT');
      assert.deepEqual(await c.waitExit(15_000), { code: 0, signal: null }, c.output);
      assert.ok(Date.now() - t0 < 15_000, 'did not wait for the request');
      assert.ok((await inflight) instanceof Error, 'the request in flight was cut');
      workersStopped(c, workers, inner);
    });
  }
});
