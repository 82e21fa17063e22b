/**
 * A log directory on a filesystem that fills up, for real: a 256 KiB tmpfs mounted for the
 * test (root only). Serving goes on, the operator hears of it on stderr (the journal), not
 * only in an error log on the same full disk, and no line of either log is torn or glued.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Corral } from '../helpers/corral.js';
import { load, waitHttp } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';

const notRoot = process.getuid?.() !== 0;
const started: Corral[] = [];
let mounted: string | undefined;

after(() => {
  started.forEach((c) => c.kill());
  if (!mounted) return;
  if (spawnSync('umount', [mounted]).status !== 0) spawnSync('umount', ['-l', mounted]);
  rmdirSync(mounted);
});

/** Writes until the filesystem has no byte left. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [65_536, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x2e);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Every line of a log file, parsed (a torn or glued line fails the test). */
function jsonLines(path: string): Array<Record<string, unknown>> {
  const text = readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'), `${path} ends with a whole line`);
  return text.split('\n').filter(Boolean).map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return assert.fail(`torn or glued line in ${path}: ${line.slice(0, 300)}`);
    }
  });
}

describe('a full disk under the logs', () => {
  test('is told on stderr, with the lines dropped, and when writing resumes; no line is glued', { skip: notRoot && 'needs root to mount a small tmpfs' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-full-'));
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'corral-full', dir]);
    assert.equal(mount.status, 0, `mount a tmpfs: ${String(mount.stderr)}`);
    mounted = dir;
    const port = await freePort();
    const c = new Corral(['--bind', `127.0.0.1:${port}`, '--workers', '2', '--log-dir', dir, '--log-write-error-interval', '1', app('hello.mjs')]);
    started.push(c);
    await waitHttp(port);
    const before = await load({ port, total: 50, concurrency: 4, keepAlive: true, idPrefix: 'before' });
    assert.equal(before.failed, 0);

    fill(join(dir, 'filler'));
    const during = await load({ port, total: 600, concurrency: 8, keepAlive: true, idPrefix: 'full', maxMs: 30_000 });
    assert.equal(during.failed, 0, 'serving goes on');
    const failedLine = await c.waitForLine(/^corral: worker \d+\.\d+ \(pid \d+\): cannot write access log .*access\.log: ENOSPC/);
    assert.match(failedLine, /lines are dropped until it works again \(\d+ so far; reported at most every 1 s\)$/);

    rmSync(join(dir, 'filler'));
    // Each worker tries the file again within the interval (lines meanwhile are still dropped)
    // and says so when it works: wait until every worker that failed has.
    // The workers' reports, by worker. The master's own error log sits on the same disk and
    // may fail and resume too; its lines ("corral: cannot write error log ...") are not these.
    const who = (re: RegExp) =>
      new Set(
        c.lines
          .map((l) => /^corral: worker (\S+) \(pid \d+\): (.*)$/.exec(l))
          .filter((m): m is RegExpExecArray => m !== null && re.test(m[2]!))
          .map((m) => m[1]!),
      );
    const resumedBy = Date.now() + 15_000;
    for (let round = 0; who(/^access log .* is writable again/).size < who(/^cannot write access log/).size; round++) {
      assert.ok(Date.now() < resumedBy, `not every worker said "writable again"; output:\n${c.output}`);
      await load({ port, total: 20, concurrency: 4, keepAlive: false, idPrefix: `retry${round}` });
    }
    const resumed = c.lines.find((l) => /^corral: worker .*: access log .* is writable again/.test(l))!;
    assert.match(resumed, /^corral: worker \d+\.\d+ \(pid \d+\): access log .*access\.log is writable again \(\d+ line\(s\) dropped meanwhile\)$/);
    const after = await load({ port, total: 200, concurrency: 8, keepAlive: true, idPrefix: 'after' });
    assert.equal(after.failed, 0);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);

    const ids = new Set<string>();
    for (const line of jsonLines(join(dir, 'access.log'))) {
      const id = String(line.request_id);
      assert.ok(!ids.has(id), `${id} logged once`);
      ids.add(id);
    }
    assert.deepEqual(before.okIds.filter((id) => !ids.has(id)), [], 'lines written before the disk filled are kept');
    assert.deepEqual(after.okIds.filter((id) => !ids.has(id)), [], 'every line after space returned is written');
    assert.ok(during.okIds.filter((id) => !ids.has(id)).length > 0, 'the disk really was full');
    jsonLines(join(dir, 'error.log'));
  });
});
