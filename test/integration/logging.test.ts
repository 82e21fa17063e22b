import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { asNobody, Corral, runCli } from '../helpers/corral.js';
import { get, load } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { app } from '../helpers/paths.js';
import { until } from '../helpers/request-path.js';

const started: Corral[] = [];
after(() => started.forEach((c) => c.kill()));

async function serving(args: string[], opts: ConstructorParameters<typeof Corral>[1] = {}): Promise<{ c: Corral; port: number }> {
  const port = await freePort();
  const c = new Corral(['--bind', `127.0.0.1:${port}`, ...args], opts);
  started.push(c);
  // With the error log in a file the "ready" line is there, not on the output. An answer
  // alone is not enough: the first workers may answer before the master is ready.
  if (args.includes('--log-dir') && !args.includes('--error-log')) {
    const errorLog = join(args[args.indexOf('--log-dir') + 1]!, 'error.log');
    await until(() => existsSync(errorLog) && readFileSync(errorLog, 'utf8').includes('"msg":"ready: '), `the ready line in ${errorLog}`, 20_000);
  } else await c.waitReady();
  return { c, port };
}

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `corral-${p}-`));

/** Every line of every file in dir, parsed as JSON (a line that does not parse fails the test). */
function accessLines(dir: string, prefix = 'access'): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith(prefix))) {
    const text = readFileSync(join(dir, f), 'utf8');
    assert.ok(text === '' || text.endsWith('\n'), `${f} ends with a whole line`);
    for (const line of text.split('\n').filter(Boolean)) {
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        assert.fail(`torn or unparsable line in ${f}: ${line.slice(0, 200)}`);
      }
    }
  }
  return out;
}

describe('logs', () => {
  test('json access lines on stdout: request id taken or made and echoed, secrets never logged', async () => {
    const { c, port } = await serving(['--workers', '1', app('chatty.mjs')]);
    const given = await get({ port, path: '/x', headers: { 'x-request-id': 'abc-123', authorization: 'Bearer SECRET-AUTH', cookie: 'sid=SECRET-COOKIE', 'x-forwarded-for': '203.0.113.9', 'user-agent': 'tester/1' } });
    assert.equal(given.headers['x-request-id'], 'abc-123');
    const made = await get({ port, path: '/y' });
    assert.match(String(made.headers['x-request-id']), /^[A-Za-z0-9_-]{16}-[0-9a-z]+$/);
    c.signal('SIGQUIT');
    await c.waitExit();
    const lines = c.lines.filter((l) => l.includes('"request_id"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    const [a, b] = lines;
    assert.equal(a!.request_id, 'abc-123');
    assert.equal(a!.method, 'GET');
    assert.equal(a!.url, '/x');
    assert.equal(a!.status, 200);
    assert.equal(a!.bytes, 2);
    assert.equal(a!.forwarded_for, '203.0.113.9');
    assert.equal(a!.user_agent, 'tester/1');
    assert.equal(typeof a!.duration_ms, 'number');
    assert.equal(a!.pid, (JSON.parse(c.lines.find((l) => l.includes('"request_id"'))!) as { pid: number }).pid);
    assert.equal(b!.request_id, made.headers['x-request-id']);
    assert.doesNotMatch(c.output, /SECRET/, 'Authorization, Cookie and Set-Cookie values appear nowhere');
  });

  test('combined and template formats', async () => {
    const { c, port } = await serving(['--workers', '1', '--access-log-format', 'combined', app('chatty.mjs')]);
    await get({ port, path: '/c', headers: { referer: 'https://ref/', 'user-agent': 'ua/1' } });
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.ok(c.lines.some((l) => /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/c HTTP\/1\.1" 200 2 "https:\/\/ref\/" "ua\/1"$/.test(l)), c.output);
    const t = await serving(['--workers', '1', '--access-log-format', '{method} {url} {status} {res.x-tenant} {request_id}', app('chatty.mjs')]);
    await get({ port: t.port, path: '/t', headers: { 'x-request-id': 'rid-9' } });
    t.c.signal('SIGQUIT');
    await t.c.waitExit();
    assert.ok(t.c.lines.includes('GET /t 200 acme rid-9'), t.c.output);
  });

  test('app output and uncaught errors land in the error log with their worker; slow requests warn', async () => {
    const { c, port } = await serving(['--workers', '1', '--access-log', 'off', '--slow-request-threshold', '0.2', app('hello.mjs')]);
    await get({ port, path: '/slow?ms=300' });
    const chatty = await serving(['--workers', '1', '--access-log', 'off', app('chatty.mjs')]);
    const [wpid] = await chatty.c.workerPids();
    await get({ port: chatty.port, path: '/print' });
    await get({ port: chatty.port, path: '/throw' });
    const out = await chatty.c.waitForLine(/"stream":"stdout"/);
    assert.match(out, new RegExp(`"level":"info".*"pid":${wpid},"role":"app","worker":"1.1","stream":"stdout","msg":"hello from the app on stdout"`));
    assert.match(await chatty.c.waitForLine(/"stream":"stderr"/), /"level":"error".*"msg":"trouble from the app on stderr"/);
    assert.match(await chatty.c.waitForLine(/uncaught exception/), new RegExp(`"level":"error".*"pid":${wpid},"role":"worker","worker":"1.1".*boom in a timer`));
    // the worker that threw is replaced, the service goes on
    await chatty.c.waitForLine(/asks to be replaced \(uncaught exception\)/);
    assert.equal((await get({ port: chatty.port })).status, 200);
    assert.match(await c.waitForLine(/slow request/), /"level":"warn".*"url":"\/slow\?ms=300".*slow request: GET \/slow\?ms=300 took 3\d\d ms/);
    for (const s of [c, chatty.c]) {
      s.signal('SIGQUIT');
      assert.equal((await s.waitExit()).code, 0);
    }
  });

  test('syslog priority prefixes for journald', async () => {
    const { c, port } = await serving(['--workers', '1', '--log-syslog-prefix', 'on', app('chatty.mjs')]);
    await get({ port, path: '/print' });
    await c.waitForLine(/trouble from the app/);
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.ok(c.lines.every((l) => /^<[0-7]>/.test(l)), c.output);
    assert.ok(c.lines.some((l) => l.startsWith('<3>') && l.includes('trouble from the app')));
    assert.ok(c.lines.some((l) => l.startsWith('<6>') && l.includes('"request_id"')));
    assert.ok(c.lines.some((l) => l.startsWith('<6>') && l.includes('ready: 1 worker')));
  });

  test('log-dir: files access.log and error.log; a missing or unwritable directory exits 78 naming path and user', async () => {
    const dir = tmp('logdir');
    const { c, port } = await serving(['--workers', '1', '--log-dir', dir, app('hello.mjs')]);
    await get({ port, headers: { 'x-request-id': 'in-file' } });
    c.signal('SIGQUIT');
    await c.waitExit();
    assert.ok(accessLines(dir).some((l) => l.request_id === 'in-file'));
    assert.match(readFileSync(join(dir, 'error.log'), 'utf8'), /ready: 1 worker/);
    const missing = await runCli(['--log-dir', join(dir, 'nope'), app('hello.mjs')]);
    assert.equal(missing.code, 78);
    assert.match(missing.output, /E_LOG_PATH: log-dir .*\/nope does not exist: create it, writable by user root \(uid 0\)/);
    // as an unprivileged user, a root-owned directory is not writable
    const locked = tmp('locked');
    chmodSync(locked, 0o755);
    const denied = await runCli(['--log-dir', locked, app('hello.mjs')], { wrap: asNobody() });
    assert.equal(denied.code, 78);
    assert.match(denied.output, /E_LOG_PATH: log-dir .* is not writable by user nobody \(uid 65534\)/);
  });

  test('USR1 sent to every process of the service opens no debugger in the workers', async () => {
    const { c, port } = await serving(['--workers', '2', '--access-log', 'off', app('hello.mjs')]);
    for (const pid of await c.workerPids()) process.kill(pid, 'SIGUSR1');
    c.signal('SIGUSR1');
    await c.waitForLine(/USR1: log files reopened/);
    assert.equal((await get({ port })).status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(c.output, /Debugger listening/);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('a write error later (disk full) does not stop serving and is reported once per interval', async () => {
    const dir = tmp('full');
    symlinkSync('/dev/full', join(dir, 'access.log'));
    const { c, port } = await serving(['--workers', '1', '--access-log', join(dir, 'access.log'), '--log-write-error-interval', '1', app('hello.mjs')]);
    const t0 = Date.now();
    const r = await load({ port, total: 3000, concurrency: 4, keepAlive: true, maxMs: 20_000 });
    while (Date.now() - t0 < 2500) await get({ port });
    assert.equal(r.failed, 0, 'serving went on');
    const reports = c.lines.filter((l) => /cannot write access log/.test(l));
    // At most one per interval (1 s) of the run, however long a loaded machine makes it.
    const seconds = (Date.now() - t0) / 1000;
    assert.ok(reports.length >= 1 && reports.length <= Math.ceil(seconds) + 1, `one report per second, not one per request: ${reports.length} in ${seconds.toFixed(1)} s`);
    assert.ok(reports.length * 100 < r.sent, `${reports.length} reports for ${r.sent} requests`);
    assert.match(reports[0]!, /ENOSPC|no space/i);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
  });

  test('20,000 requests across built-in rotations, logrotate-style renames and reloads: exactly one line each', async () => {
    const dir = tmp('exact');
    const { c, port } = await serving(['--workers', '2', '--log-dir', dir, '--log-rotate-size', '600K', '--log-rotate-keep', '1000', '--error-log', '-', app('hello.mjs')]);
    const run = load({ port, total: 20_000, concurrency: 32, keepAlive: true, idPrefix: 'r', maxMs: 240_000 });
    const events: string[] = [];
    // The current file is the highest number; a built-in rotation moves it on.
    const current = (): number => Math.max(0, ...readdirSync(dir).map((f) => /^access\.(\d+)\.log$/.exec(f)).filter((m) => m !== null).map((m) => Number(m[1])));
    let seen = Math.max(1, current());
    for (let i = 0; i < 3; i++) {
      // Each rename comes after a built-in rotation, however fast or slow the machine serves.
      await until(() => current() !== seen, `a built-in rotation after access.${seen}.log`, 60_000);
      seen = current();
      // what logrotate does without copytruncate: rename, then tell the writer to reopen
      renameSync(join(dir, `access.${seen}.log`), join(dir, `access-rotated-${i}.log`));
      c.signal('SIGUSR1');
      events.push(`rename access.${seen}.log`);
      if (i < 2) {
        assert.equal((await runCli(['reload', '--wait', String(c.pid)])).code, 0);
        events.push('reload');
      }
    }
    const r = await run;
    assert.equal(r.failed, 0, r.errors.join('; '));
    assert.equal(r.okIds.length, 20_000);
    c.signal('SIGQUIT');
    assert.equal((await c.waitExit()).code, 0);
    const files = readdirSync(dir).filter((f) => f.startsWith('access'));
    const builtIn = files.filter((f) => /^access\.\d+\.log$/.test(f)).length;
    assert.ok(builtIn >= 4, `at least three built-in rotations (files: ${files.join(' ')})`);
    assert.equal(files.filter((f) => f.startsWith('access-rotated-')).length, 3);
    const ids = accessLines(dir).map((l) => String(l.request_id));
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const dupes = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(dupes, [], 'no line is duplicated');
    const missing = r.okIds.filter((id) => !counts.has(id));
    assert.deepEqual(missing, [], 'no line is lost');
    assert.equal(ids.length, 20_000);
    assert.deepEqual(events.filter((e) => e === 'reload').length, 2);
  });

  // Express replaces each response's prototype: its line must still be written at the end,
  // not when the connection closes.
  for (const [fixture, kind] of [['hello.mjs', 'a plain handler'], ['express-routes.mjs', 'an Express app']] as const) {
    test(`a worker killed right after ending a response (${kind}): no client has an answer without its line`, async () => {
      const dir = tmp('die');
      const { c, port } = await serving(['--workers', '2', '--log-dir', dir, '--error-log', '-', app(fixture)]);
      const answered: string[] = [];
      for (let i = 0; i < 6; i++) {
        const id = `die-${i}`;
        // Killed in the same turn as the answer, or at its end (after that turn's writes).
        const r = await get({ port, path: i % 2 === 0 ? '/die' : '/die?at=immediate', headers: { 'x-request-id': id } }).catch(() => undefined);
        if (r?.status === 200) answered.push(id);
        // Let the master replace the worker (crash back-off) before the next one.
        await new Promise((r) => setTimeout(r, 1200));
      }
      const after = await get({ port, headers: { 'x-request-id': 'after' } });
      assert.equal(after.status, 200, 'still serving');
      c.signal('SIGQUIT');
      await c.waitExit();
      const logged = new Set(accessLines(dir).map((l) => String(l.request_id)));
      assert.ok(logged.has('after'));
      assert.ok(answered.length > 0, 'some answers reached their client');
      assert.deepEqual(answered.filter((id) => !logged.has(id)), [], 'an answer reached the client before its line was written');
    });
  }

  test('workers killed with SIGKILL mid-load: every answered request is logged, once', async () => {
    const dir = tmp('kill');
    const { c, port } = await serving(['--workers', '2', '--log-dir', dir, '--error-log', '-', app('hello.mjs')]);
    const concurrency = 32;
    const run = load({ port, total: 16000, concurrency, keepAlive: true, idPrefix: 'k', maxMs: 120_000 });
    // Several kills at different moments of the workers' event-loop turns, each while
    // responses are going out: a line written after its response (or not at all) shows up.
    const kills = 5;
    const killed = new Set<number>();
    for (let i = 0; i < kills; i++) {
      await new Promise((r) => setTimeout(r, 250));
      // The replacement of the last victim may still be on its way (crash back-off).
      let live: number[] = [];
      for (let t = 0; t < 100 && live.length === 0; t++) {
        live = (await c.workerPids()).filter((pid) => !killed.has(pid));
        if (live.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(live.length > 0, 'a live worker to kill');
      killed.add(live[0]!);
      process.kill(live[0]!, 'SIGKILL');
    }
    const r = await run;
    c.signal('SIGQUIT');
    await c.waitExit();
    const logged = new Map<string, number>();
    for (const l of accessLines(dir)) logged.set(String(l.request_id), (logged.get(String(l.request_id)) ?? 0) + 1);
    assert.deepEqual(r.okIds.filter((id) => !logged.has(id)), [], 'every request answered with 2xx has its line');
    assert.deepEqual([...logged].filter(([, n]) => n > 1), [], 'none twice');
    assert.ok(r.failed <= kills * concurrency, `only the requests in flight on the killed workers may fail (${r.failed})`);
  });
});
