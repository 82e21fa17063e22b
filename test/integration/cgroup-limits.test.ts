/**
 * Container limits as the kernel really sets them: the CLI runs inside a child cgroup this
 * test creates (cgroup v2, and cgroup v1 where a hierarchy of its own holds the controller,
 * as on hosts with the hybrid layout), with a CPU quota or a memory limit written to its
 * files. The default worker count follows the quota (rounded up), also when the quota is on
 * an ancestor; a memory limit below the workers' expected footprint is warned about at
 * start, with the numbers. Each cgroup is removed afterwards.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { after, describe, test } from 'node:test';
import { cleanEnv, Corral } from '../helpers/corral.js';
import { app, CLI, ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

type Controller = 'cpu' | 'memory';
interface Place {
  version: 1 | 2;
  /** Where this test's cgroups are made. */
  parent: string;
}

function mounts(): Array<{ fstype: string; point: string; opts: string[] }> {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').flatMap((line) => {
    const sep = line.indexOf(' - ');
    if (sep < 0) return [];
    const [fstype = '', , opts = ''] = line.slice(sep + 3).split(' ');
    return [{ fstype, point: line.slice(0, sep).split(' ')[4] ?? '', opts: opts.split(',') }];
  });
}

/** Where a child cgroup with `controller` can be made, or why not. */
function place(controller: Controller, version: 1 | 2): Place | string {
  if (process.platform !== 'linux') return 'needs Linux (cgroups)';
  if (process.getuid?.() !== 0) return 'needs root: creating cgroups is for root only';
  if (version === 2) {
    const m = mounts().find((x) => x.fstype === 'cgroup2');
    if (!m) return 'no cgroup2 file system mounted';
    const type = spawnSync('stat', ['-fc', '%T', m.point], { encoding: 'utf8' }).stdout.trim();
    if (type !== 'cgroup2fs') return `${m.point} is ${type}, not cgroup2fs`;
    // A child of the mount's root: the root may delegate controllers while it holds processes.
    const available = readFileSync(`${m.point}/cgroup.controllers`, 'utf8').trim().split(/\s+/);
    if (!available.includes(controller)) return `the cgroup2 hierarchy at ${m.point} has no ${controller} controller (here cgroup v1 holds it: the hybrid layout)`;
    const enabled = readFileSync(`${m.point}/cgroup.subtree_control`, 'utf8').trim().split(/\s+/);
    if (!enabled.includes(controller)) {
      try {
        writeFileSync(`${m.point}/cgroup.subtree_control`, `+${controller}`);
      } catch (err) {
        return `cannot enable the ${controller} controller in ${m.point}/cgroup.subtree_control: ${(err as Error).message}`;
      }
    }
    return { version, parent: m.point };
  }
  const m = mounts().find((x) => x.fstype === 'cgroup' && x.opts.includes(controller));
  if (!m) return `no cgroup v1 hierarchy with the ${controller} controller (a pure cgroup v2 host)`;
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[1]?.split(',').includes(controller));
  const path = own?.[2] ?? '/';
  return { version, parent: path === '/' ? m.point : m.point + path };
}

/** Makes cgroup `name` under the place; every one made is removed by `removeAll`. */
const made: string[] = [];
function makeCgroup(p: Place, name: string): string {
  const dir = `${p.parent}/${name}`;
  mkdirSync(dir);
  made.push(dir);
  return dir;
}

async function removeAll(): Promise<void> {
  // Deepest first; a cgroup whose last process just exited may be busy for a moment.
  for (const dir of made.splice(0).reverse()) {
    for (let i = 0; ; i++) {
      try {
        rmdirSync(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        if (i >= 50) throw new Error(`cannot remove cgroup ${dir}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

function setCpuQuota(p: Place, dir: string, quota: number, period: number): void {
  if (p.version === 2) {
    writeFileSync(`${dir}/cpu.max`, `${quota} ${period}`);
  } else {
    writeFileSync(`${dir}/cpu.cfs_period_us`, String(period));
    writeFileSync(`${dir}/cpu.cfs_quota_us`, String(quota));
  }
}

function setMemoryLimit(p: Place, dir: string, bytes: number): void {
  writeFileSync(`${dir}/${p.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'}`, String(bytes));
}

/** A command prefix that moves the shell into cgroup `dir`, then execs the command. */
const into = (dir: string) => ['sh', '-c', `echo $$ > ${dir}/cgroup.procs && exec "$0" "$@"`];

/** `corral print-config --json` run inside cgroup `dir`: the workers setting. */
function workersIn(dir: string): { value: number; source: string } {
  const [cmd, ...args] = [...into(dir), process.execPath, CLI, 'print-config', '--json', app('hello.mjs')];
  const r = spawnSync(cmd!, args, { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  // print-config --json gives the workers setting as its range; the default is a fixed count.
  const w = (JSON.parse(r.stdout) as { workers: { value: { min: number; max: number }; source: string } }).workers;
  assert.equal(w.value.min, w.value.max, 'the default is a fixed count');
  return { value: w.value.min, source: w.source };
}

const MIB = 1024 * 1024;
const cpus = availableParallelism();

for (const version of [2, 1] as const) {
  const cpu = place('cpu', version);
  describe(`cgroup v${version} CPU quota: the default worker count`, { skip: typeof cpu === 'string' ? cpu : undefined, timeout: 120_000 }, () => {
    const p = cpu as Place;
    after(removeAll);

    test('no quota: one worker per CPU of the affinity mask (the control case)', () => {
      const dir = makeCgroup(p, `corral-test-${process.pid}-cpu-none`);
      assert.deepEqual(workersIn(dir), { value: cpus, source: 'default' });
    });

    test('150000 100000 (1.5 CPUs): 2 workers, the quota rounded up', { skip: cpus < 2 ? `needs 2 CPUs (${cpus} here)` : undefined }, () => {
      const dir = makeCgroup(p, `corral-test-${process.pid}-cpu-150`);
      setCpuQuota(p, dir, 150000, 100000);
      assert.deepEqual(workersIn(dir), { value: 2, source: 'default' });
    });

    test('100000 100000 and 50000 100000: 1 worker', { skip: cpus < 2 ? `needs 2 CPUs to tell the quota from the affinity (${cpus} here)` : undefined }, () => {
      const dir = makeCgroup(p, `corral-test-${process.pid}-cpu-100`);
      setCpuQuota(p, dir, 100000, 100000);
      assert.deepEqual(workersIn(dir), { value: 1, source: 'default' });
      const half = makeCgroup(p, `corral-test-${process.pid}-cpu-50`);
      setCpuQuota(p, half, 50000, 100000);
      assert.deepEqual(workersIn(half), { value: 1, source: 'default' });
    });

    test('a quota on the parent cgroup limits a process in its child', { skip: cpus < 2 ? `needs 2 CPUs (${cpus} here)` : undefined }, () => {
      const parent = makeCgroup(p, `corral-test-${process.pid}-cpu-parent`);
      setCpuQuota(p, parent, 100000, 100000);
      if (version === 2) writeFileSync(`${parent}/cgroup.subtree_control`, '+cpu');
      const child = makeCgroup({ ...p, parent }, 'leaf');
      assert.deepEqual(workersIn(child), { value: 1, source: 'default' });
    });

    test('--workers still wins over the quota', () => {
      const dir = makeCgroup(p, `corral-test-${process.pid}-cpu-flag`);
      setCpuQuota(p, dir, 50000, 100000);
      const [cmd, ...args] = [...into(dir), process.execPath, CLI, 'print-config', '--json', '--workers', '3', app('hello.mjs')];
      const r = spawnSync(cmd!, args, { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
      assert.deepEqual((JSON.parse(r.stdout) as { workers: { value: unknown } }).workers.value, { min: 3, max: 3 }, r.stderr);
    });
  });

  const mem = place('memory', version);
  describe(`cgroup v${version} memory limit: a warning at start when the workers will not fit`, { skip: typeof mem === 'string' ? mem : undefined, timeout: 120_000 }, () => {
    const p = mem as Place;
    const file = version === 2 ? 'memory.max' : 'memory.limit_in_bytes';
    const started: Corral[] = [];
    after(async () => {
      for (const c of started) c.kill();
      await Promise.all(started.map((c) => c.exited));
      await removeAll();
    });

    async function serveIn(dir: string, workers: number): Promise<Corral> {
      const port = await freePort();
      const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', String(workers), '--access-log', 'off', app('hello.mjs')], { wrap: into(dir) });
      started.push(c);
      await c.waitReady(60_000);
      return c;
    }

    test('256 MiB for 4 workers: the warning gives the limit, the estimate and the count that fits; corral still serves', async () => {
      const dir = makeCgroup(p, `corral-test-${process.pid}-mem-low`);
      // Below the estimate (4 × 60 + 50 = 290 MiB), above what 4 hello workers really take.
      setMemoryLimit(p, dir, 256 * MIB);
      const c = await serveIn(dir, 4);
      const line = c.lines.find((l) => l.includes(`${file} is`));
      assert.ok(line, `no memory warning at start:\n${c.output}`);
      assert.match(line, /"level":"warn"/);
      assert.match(line, new RegExp(`${file.replace('.', '\\.')} is 256 MiB but 4 workers need about 290 MiB \\(60 MiB each \\+ 50 MiB for the master\\): set --workers 3 `));
      c.signal('SIGTERM');
      assert.deepEqual(await c.waitExit(30_000), { code: 0, signal: null }, c.output);
    });

    test('4 GiB for 2 workers: no warning', async () => {
      const dir = makeCgroup(p, `corral-test-${process.pid}-mem-high`);
      setMemoryLimit(p, dir, 4096 * MIB);
      const c = await serveIn(dir, 2);
      assert.ok(!c.lines.some((l) => /memory\.(max|limit_in_bytes) is/.test(l)), c.output);
      c.signal('SIGTERM');
      assert.deepEqual(await c.waitExit(30_000), { code: 0, signal: null }, c.output);
    });
  });
}
