import { cgroupHierarchies, readOrUndefined, type ReadFile } from './cgroup.js';

/**
 * A cgroup memory limit too small for the workers, said at start: in a container the
 * default worker count follows the CPUs (or the CPU quota), but nothing ties it to the
 * memory limit, and a pod with `limits.memory: 256Mi` and no CPU limit on a 16-CPU node
 * would start 16 workers and be OOM-killed again and again.
 *
 * The estimate is deliberately simple and on the safe side: each worker's resident memory
 * (RSS) is taken as WORKER_MIB (Node itself, a small app and its first requests: corral's
 * hello worker is about 50 MiB, an Express one about 60 MiB), or as max-memory when that is
 * set (a worker may grow that far before it is replaced); the master adds MASTER_MIB. RSS
 * counts Node's shared code in every process, while the cgroup charges it once, so a
 * limit just under the estimate may still hold for a small app; one far under it will not.
 * A reload (HUP) runs both generations until the old one drained: about twice the workers
 * for a moment (see docs/deployment.md#containers).
 */

const WORKER_MIB = 60;
const MASTER_MIB = 50;
const MIB = 1024 * 1024;

/** cgroup v2 memory.max ("max" or bytes). */
export function parseMemoryMax(content: string): number | undefined {
  const v = content.trim();
  if (!v || v === 'max') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** cgroup v1 memory.limit_in_bytes: "no limit" is a huge page-aligned number (2^63 - 4096 on x86-64). */
export function parseLimitInBytes(content: string): number | undefined {
  const n = Number(content.trim());
  return Number.isFinite(n) && n > 0 && n < 2 ** 60 ? n : undefined;
}

export interface MemoryLimit {
  bytes: number;
  /** The file it was read from, as the warning names it. */
  file: 'memory.max' | 'memory.limit_in_bytes';
}

/** The smallest memory limit on this process's cgroup or an ancestor; undefined without one. */
export function cgroupMemoryLimit(read: ReadFile = readOrUndefined): MemoryLimit | undefined {
  let best: MemoryLimit | undefined;
  for (const h of cgroupHierarchies('memory', read)) {
    const file = h.version === 2 ? 'memory.max' : 'memory.limit_in_bytes';
    for (const dir of h.dirs) {
      const raw = read(`${dir}/${file}`);
      const bytes = raw === undefined ? undefined : h.version === 2 ? parseMemoryMax(raw) : parseLimitInBytes(raw);
      if (bytes !== undefined && (best === undefined || bytes < best.bytes)) best = { bytes, file };
    }
  }
  return best;
}

export interface Footprint {
  perWorker: number;
  master: number;
  total: number;
}

/** The workers' and the master's expected resident memory, in bytes (see above). */
export function footprint(workers: number, maxMemory: number): Footprint {
  const perWorker = maxMemory > 0 ? maxMemory : WORKER_MIB * MIB;
  const master = MASTER_MIB * MIB;
  return { perWorker, master, total: master + workers * perWorker };
}

const mib = (bytes: number) => `${Math.round(bytes / MIB)} MiB`;

/** The start-up warning when the limit is below the footprint, else undefined. */
export function memoryWarning(limit: MemoryLimit | undefined, workers: number, maxMemory: number): string | undefined {
  if (limit === undefined) return undefined;
  const f = footprint(workers, maxMemory);
  if (limit.bytes >= f.total) return undefined;
  const fit = Math.floor((limit.bytes - f.master) / f.perWorker);
  const each = `${mib(f.perWorker)} each${maxMemory > 0 ? ' (max-memory)' : ''} + ${mib(f.master)} for the master`;
  const fix = fit >= 1 && fit < workers ? `set --workers ${fit} (CORRAL_WORKERS) or raise the limit` : 'raise the limit';
  return `${limit.file} is ${mib(limit.bytes)} but ${workers} worker${workers === 1 ? '' : 's'} need about ${mib(f.total)} (${each}): ${fix}, or the kernel will kill workers when memory runs out (see docs/deployment.md#containers)`;
}

/**
 * Logs the memory warning, if any, as a warning of the master's error log. A range of
 * workers is checked at its minimum (what starts): above it, the master adds workers only
 * while the limit holds them at the RSS it measures (master/autoscale.ts).
 */
export function warnIfMemoryTight(log: { warn(msg: string): void }, cfg: { workers: { min: number }; maxMemory: number }, read: ReadFile = readOrUndefined): void {
  const warning = memoryWarning(cgroupMemoryLimit(read), cfg.workers.min, cfg.maxMemory);
  if (warning) log.warn(warning);
}
