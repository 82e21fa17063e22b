import { availableParallelism } from 'node:os';
import { cgroupHierarchies, readOrUndefined, type ReadFile } from './cgroup.js';

/**
 * CPUs this process may really use: the affinity mask (availableParallelism) capped by a
 * cgroup CPU quota, as containers (`docker run --cpus`, a Kubernetes CPU limit) and systemd
 * CPUQuota= set it: cgroup v2 cpu.max "QUOTA PERIOD", or cgroup v1 cpu.cfs_quota_us over
 * cpu.cfs_period_us. A fractional quota is rounded up (1.5 CPUs: 2 workers).
 */
export function usableCpus(read: ReadFile = readOrUndefined): number {
  const byAffinity = availableParallelism();
  const quota = cgroupCpuQuota(read);
  return Math.max(1, quota === undefined ? byAffinity : Math.min(byAffinity, Math.ceil(quota)));
}

export function parseCpuMax(content: string): number | undefined {
  const [quota, period] = content.trim().split(/\s+/);
  if (!quota || quota === 'max' || !period) return undefined;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : undefined;
}

/** cgroup v1: cpu.cfs_quota_us is -1 when there is no quota. */
export function parseCfsQuota(quota: string, period: string): number | undefined {
  const q = Number(quota.trim());
  const p = Number(period.trim());
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? q / p : undefined;
}

/** The smallest CPU quota on this process's cgroup or an ancestor, in CPUs; undefined without one. */
export function cgroupCpuQuota(read: ReadFile = readOrUndefined): number | undefined {
  let best: number | undefined;
  for (const h of cgroupHierarchies('cpu', read)) {
    for (const dir of h.dirs) {
      let q: number | undefined;
      if (h.version === 2) {
        const max = read(`${dir}/cpu.max`);
        q = max === undefined ? undefined : parseCpuMax(max);
      } else {
        const quota = read(`${dir}/cpu.cfs_quota_us`);
        const period = read(`${dir}/cpu.cfs_period_us`);
        q = quota === undefined || period === undefined ? undefined : parseCfsQuota(quota, period);
      }
      if (q !== undefined) best = best === undefined ? q : Math.min(best, q);
    }
  }
  return best;
}
