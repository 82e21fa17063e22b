import { readFileSync } from 'node:fs';

/**
 * Where this process's cgroup limits live, for cgroup v2 (one unified hierarchy, files such
 * as cpu.max and memory.max) and cgroup v1 (one hierarchy per controller: cpu.cfs_quota_us,
 * memory.limit_in_bytes), as containers, Kubernetes and systemd set them.
 *
 * /proc/self/cgroup names the process's cgroup in each hierarchy; /proc/self/mountinfo says
 * where each hierarchy is mounted and which of its cgroups is the mount's root (a container
 * sees its own cgroup mounted at /sys/fs/cgroup, with or without a cgroup namespace). A
 * limit on any ancestor limits the process too, so the directories are listed from the
 * process's own cgroup up to the mount point; above it nothing can be read.
 */

export interface CgroupHierarchy {
  version: 1 | 2;
  /** Directories from the process's own cgroup up to the mount point. */
  dirs: string[];
}

/** Reads a file, or undefined when it cannot (absent, no permission). */
export type ReadFile = (path: string) => string | undefined;

export const readOrUndefined: ReadFile = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

interface CgroupMount {
  version: 1 | 2;
  /** v1: the controllers this hierarchy has (cpu, cpuacct, memory, ...). */
  controllers: string[];
  /** The cgroup (within the hierarchy) mounted at `point`. */
  root: string;
  point: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const root = unescape(fields[3] ?? '');
    const point = unescape(fields[4] ?? '');
    if (!root || !point) continue;
    out.push({
      version: fstype === 'cgroup2' ? 2 : 1,
      controllers: fstype === 'cgroup' ? superOpts.split(',') : [],
      root,
      point,
    });
  }
  return out;
}

/** /proc/self/cgroup: "ID:CONTROLLERS:PATH" lines; v2 is "0::PATH". */
export function parseProcCgroup(text: string): Array<{ controllers: string[]; path: string; v2: boolean }> {
  const out: Array<{ controllers: string[]; path: string; v2: boolean }> = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    out.push({ controllers: m[2] ? m[2].split(',') : [], path: m[3]!, v2: m[1] === '0' && m[2] === '' });
  }
  return out;
}

/** From the cgroup `path` seen through a mount of cgroup `root` at `point`: its directory and its ancestors' up to `point`. */
export function dirsUp(point: string, root: string, path: string): string[] {
  const trim = (p: string) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p);
  const r = trim(root);
  const p = trim(path);
  // A path outside the mounted subtree (a cgroup namespace's "/.." paths): only the mount point is ours.
  let rel: string;
  if (r === '/') rel = p === '/' ? '' : p;
  else if (p === r) rel = '';
  else if (p.startsWith(r + '/')) rel = p.slice(r.length);
  else rel = '';
  if (rel.split('/').includes('..')) rel = '';
  const base = trim(point);
  const dirs: string[] = [];
  for (;;) {
    dirs.push(rel ? base + rel : base);
    if (!rel) break;
    rel = rel.slice(0, rel.lastIndexOf('/'));
  }
  return dirs;
}

/**
 * The hierarchies holding `controller` (cpu, memory) for this process: at most one, as a
 * controller is bound to one hierarchy; the v2 one is listed whenever it is mounted (the
 * caller finds its files there or not).
 */
export function cgroupHierarchies(controller: string, read: ReadFile = readOrUndefined): CgroupHierarchy[] {
  const self = read('/proc/self/cgroup');
  const info = read('/proc/self/mountinfo');
  if (!self || !info) return [];
  const mounts = parseMountinfo(info);
  const out: CgroupHierarchy[] = [];
  for (const entry of parseProcCgroup(self)) {
    if (entry.v2) {
      const mount = mounts.find((m) => m.version === 2);
      if (mount) out.push({ version: 2, dirs: dirsUp(mount.point, mount.root, entry.path) });
    } else if (entry.controllers.includes(controller)) {
      const mount = mounts.find((m) => m.version === 1 && m.controllers.includes(controller));
      if (mount) out.push({ version: 1, dirs: dirsUp(mount.point, mount.root, entry.path) });
    }
  }
  return out;
}
