import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * CPUs this process may really use: the affinity mask (availableParallelism) capped by a
 * cgroup v2 CPU quota (cpu.max "quota period"), as containers and systemd CPUQuota= set it.
 */
export function usableCpus(): number {
  const byAffinity = availableParallelism();
  const quota = cgroupCpuQuota();
  return Math.max(1, quota === undefined ? byAffinity : Math.min(byAffinity, Math.ceil(quota)));
}

export function parseCpuMax(content: string): number | undefined {
  const [quota, period] = content.trim().split(/\s+/);
  if (!quota || quota === 'max' || !period) return undefined;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : undefined;
}

function cgroupCpuQuota(): number | undefined {
  try {
    const self = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
    if (!self) return undefined;
    // Walk up from our own cgroup: a quota on any ancestor limits us too.
    let dir = self.slice(3).trim();
    let best: number | undefined;
    for (;;) {
      try {
        const q = parseCpuMax(readFileSync(`/sys/fs/cgroup${dir === '/' ? '' : dir}/cpu.max`, 'utf8'));
        if (q !== undefined) best = best === undefined ? q : Math.min(best, q);
      } catch {
        // no cpu controller at this level
      }
      if (dir === '/' || dir === '') break;
      dir = dir.slice(0, dir.lastIndexOf('/')) || '/';
    }
    return best;
  } catch {
    return undefined;
  }
}
