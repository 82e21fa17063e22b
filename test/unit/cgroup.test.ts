/**
 * Finding cgroup limits from /proc/self/cgroup and /proc/self/mountinfo, on the layouts
 * containers really have (files given as a map; the real kernel files are exercised by
 * test/integration/cgroup-limits.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cgroupHierarchies, dirsUp, parseMountinfo, parseProcCgroup, type ReadFile } from '../../src/config/cgroup.js';
import { cgroupCpuQuota, parseCfsQuota } from '../../src/config/cpus.js';
import { cgroupMemoryLimit, footprint, memoryWarning, parseLimitInBytes, parseMemoryMax } from '../../src/config/memory.js';

const MIB = 1024 * 1024;
const files = (m: Record<string, string>): ReadFile => (p) => m[p];

const V2_MOUNT = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
const HYBRID_MOUNTS = [
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
  '35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  '50 23 0:40 / /mnt/with\\040space rw - ext4 /dev/sda1 rw',
].join('\n');

describe('cgroup files', () => {
  test('mountinfo: cgroup mounts with their root, mount point and v1 controllers', () => {
    assert.deepEqual(parseMountinfo(HYBRID_MOUNTS), [
      { version: 1, controllers: ['rw', 'cpu', 'cpuacct'], root: '/', point: '/sys/fs/cgroup/cpu,cpuacct' },
      { version: 1, controllers: ['rw', 'memory'], root: '/docker/abc', point: '/sys/fs/cgroup/memory' },
      { version: 2, controllers: [], root: '/', point: '/sys/fs/cgroup/unified' },
    ]);
    assert.equal(parseMountinfo('1 2 0:3 / /sys/fs/cgroup\\040x rw - cgroup2 none rw')[0]?.point, '/sys/fs/cgroup x');
  });

  test('/proc/self/cgroup: v2 and v1 lines', () => {
    assert.deepEqual(parseProcCgroup('0::/system.slice/app.service\n'), [{ controllers: [], path: '/system.slice/app.service', v2: true }]);
    assert.deepEqual(parseProcCgroup('4:memory:/docker/abc\n2:cpu,cpuacct:/\n0::/\n'), [
      { controllers: ['memory'], path: '/docker/abc', v2: false },
      { controllers: ['cpu', 'cpuacct'], path: '/', v2: false },
      { controllers: [], path: '/', v2: true },
    ]);
  });

  test('directories from the own cgroup up to the mount point, never above it', () => {
    assert.deepEqual(dirsUp('/sys/fs/cgroup', '/', '/kubepods/pod1/c1'), ['/sys/fs/cgroup/kubepods/pod1/c1', '/sys/fs/cgroup/kubepods/pod1', '/sys/fs/cgroup/kubepods', '/sys/fs/cgroup']);
    assert.deepEqual(dirsUp('/sys/fs/cgroup', '/', '/'), ['/sys/fs/cgroup']);
    // The container's own cgroup mounted as the root (Docker on cgroup v1, no cgroup namespace).
    assert.deepEqual(dirsUp('/sys/fs/cgroup/memory', '/docker/abc', '/docker/abc'), ['/sys/fs/cgroup/memory']);
    assert.deepEqual(dirsUp('/sys/fs/cgroup/memory', '/docker/abc', '/docker/abc/sub'), ['/sys/fs/cgroup/memory/sub', '/sys/fs/cgroup/memory']);
    // Outside the mounted subtree (a cgroup namespace shows "/.."): only the mount point.
    assert.deepEqual(dirsUp('/sys/fs/cgroup', '/', '/../../x'), ['/sys/fs/cgroup']);
    assert.deepEqual(dirsUp('/sys/fs/cgroup', '/a', '/b'), ['/sys/fs/cgroup']);
  });

  test('hierarchies of a controller: v2, and the v1 one that has it', () => {
    const read = files({ '/proc/self/cgroup': '4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n', '/proc/self/mountinfo': HYBRID_MOUNTS });
    assert.deepEqual(cgroupHierarchies('memory', read), [
      { version: 1, dirs: ['/sys/fs/cgroup/memory'] },
      { version: 2, dirs: ['/sys/fs/cgroup/unified'] },
    ]);
    assert.deepEqual(cgroupHierarchies('cpu', read)[0], { version: 1, dirs: ['/sys/fs/cgroup/cpu,cpuacct/docker/abc', '/sys/fs/cgroup/cpu,cpuacct/docker', '/sys/fs/cgroup/cpu,cpuacct'] });
    assert.deepEqual(cgroupHierarchies('cpu', files({})), [], 'no /proc: no hierarchies');
  });
});

describe('CPU quota', () => {
  test('value parsers', () => {
    assert.equal(parseCfsQuota('-1\n', '100000\n'), undefined);
    assert.equal(parseCfsQuota('150000\n', '100000\n'), 1.5);
    assert.equal(parseCfsQuota('x', '100000'), undefined);
  });

  test('cgroup v2 (a Kubernetes pod): the smallest quota on the way up', () => {
    const read = files({
      '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
      '/proc/self/mountinfo': V2_MOUNT,
      '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': '150000 100000\n',
      '/sys/fs/cgroup/kubepods/cpu.max': '400000 100000\n',
    });
    assert.equal(cgroupCpuQuota(read), 1.5);
  });

  test('cgroup v2 inside a cgroup namespace (docker run --cpus 0.5): the root of the mount is the container', () => {
    assert.equal(cgroupCpuQuota(files({ '/proc/self/cgroup': '0::/\n', '/proc/self/mountinfo': V2_MOUNT, '/sys/fs/cgroup/cpu.max': '50000 100000\n' })), 0.5);
  });

  test('cgroup v1: cpu.cfs_quota_us over cpu.cfs_period_us; no quota: undefined', () => {
    const base = { '/proc/self/cgroup': '2:cpu,cpuacct:/docker/abc\n0::/\n', '/proc/self/mountinfo': HYBRID_MOUNTS };
    assert.equal(cgroupCpuQuota(files({
      ...base,
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '250000\n',
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    })), 2.5);
    assert.equal(cgroupCpuQuota(files({ ...base, '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n' })), undefined);
  });
});

describe('memory limit', () => {
  test('value parsers: "max" and v1\'s huge "unlimited" are no limit', () => {
    assert.equal(parseMemoryMax('max\n'), undefined);
    assert.equal(parseMemoryMax('134217728\n'), 128 * MIB);
    assert.equal(parseLimitInBytes('9223372036854771712\n'), undefined);
    assert.equal(parseLimitInBytes('268435456\n'), 256 * MIB);
  });

  test('the smallest limit up the hierarchy, named by its file', () => {
    assert.deepEqual(cgroupMemoryLimit(files({
      '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
      '/proc/self/mountinfo': V2_MOUNT,
      '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': '536870912\n',
      '/sys/fs/cgroup/kubepods/pod1/memory.max': '268435456\n',
      '/sys/fs/cgroup/kubepods/memory.max': 'max\n',
    })), { bytes: 256 * MIB, file: 'memory.max' });
    assert.deepEqual(cgroupMemoryLimit(files({
      '/proc/self/cgroup': '4:memory:/docker/abc\n0::/\n',
      '/proc/self/mountinfo': HYBRID_MOUNTS,
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': '134217728\n',
    })), { bytes: 128 * MIB, file: 'memory.limit_in_bytes' });
  });

  test('the footprint: 60 MiB a worker (or max-memory) + 50 MiB for the master', () => {
    assert.deepEqual(footprint(4, 0), { perWorker: 60 * MIB, master: 50 * MIB, total: 290 * MIB });
    assert.equal(footprint(2, 200 * MIB).total, 450 * MIB);
  });

  test('the warning states the limit, the estimate, how it is made and the worker count that fits', () => {
    const limit = { bytes: 128 * MIB, file: 'memory.max' as const };
    assert.equal(
      memoryWarning(limit, 4, 0),
      'memory.max is 128 MiB but 4 workers need about 290 MiB (60 MiB each + 50 MiB for the master): set --workers 1 (CORRAL_WORKERS) or raise the limit, or the kernel will kill workers when memory runs out (see docs/deployment.md#containers)',
    );
    assert.match(memoryWarning({ bytes: 64 * MIB, file: 'memory.limit_in_bytes' }, 2, 0)!, /^memory\.limit_in_bytes is 64 MiB but 2 workers need about 170 MiB .*: raise the limit,/);
    assert.match(memoryWarning({ bytes: 512 * MIB, file: 'memory.max' }, 2, 300 * MIB)!, /650 MiB \(300 MiB each \(max-memory\) \+ 50 MiB for the master\): set --workers 1 /);
    assert.equal(memoryWarning({ bytes: 290 * MIB, file: 'memory.max' }, 4, 0), undefined, 'exactly enough: no warning');
    assert.equal(memoryWarning(undefined, 64, 0), undefined, 'no limit: no warning');
  });
});
