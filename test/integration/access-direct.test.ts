import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { cleanEnv } from '../helpers/corral.js';
import { load, waitHttp } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { CLI, ROOT, app } from '../helpers/paths.js';

const pids: number[] = [];
after(() => {
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

describe('access lines written by the workers themselves', () => {
  test('a stdout nobody reads for a while blocks the workers; once read, every answered request has exactly one whole line', async () => {
    const port = await freePort();
    // stdout is a pipe this test leaves unread at first: the workers write to it directly.
    const proc = spawn(process.execPath, [CLI, '--bind', `127.0.0.1:${port}`, '--workers', '2', '--error-log', '/dev/null', app('hello.mjs')], {
      cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'], detached: true,
    });
    pids.push(proc.pid!);
    await waitHttp(port);
    proc.stdout!.pause();
    const run = load({ port, total: 6000, concurrency: 16, keepAlive: true, idPrefix: 'bp', maxMs: 60_000 });
    // The pipe (64 KiB) fills after a few hundred lines; the workers then block in write(2),
    // and so do their responses: nothing is answered while the log cannot take its line.
    await new Promise((r) => setTimeout(r, 1500));
    let text = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (c: string) => (text += c));
    proc.stdout!.resume();
    const r = await run;
    assert.equal(r.failed, 0, r.errors.join('; '));
    process.kill(proc.pid!, 'SIGQUIT');
    await new Promise((resolve) => proc.once('exit', resolve));
    const lines = text.split('\n').filter(Boolean);
    const ids = new Map<string, number>();
    for (const line of lines) {
      let rec: { request_id?: string };
      try {
        rec = JSON.parse(line) as { request_id?: string };
      } catch {
        assert.fail(`torn or interleaved line: ${line.slice(0, 200)}`);
      }
      if (rec.request_id?.startsWith('bp-')) ids.set(rec.request_id, (ids.get(rec.request_id) ?? 0) + 1);
    }
    assert.deepEqual(r.okIds.filter((id) => !ids.has(id)), [], 'no line was dropped while the destination was full');
    assert.deepEqual([...ids].filter(([, n]) => n > 1), [], 'none twice');
    assert.equal(ids.size, r.okIds.length);
  });
});
