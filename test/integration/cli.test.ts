import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { asNobody, runCli } from '../helpers/corral.js';
import { freePort } from '../helpers/ports.js';
import { app, ROOT } from '../helpers/paths.js';

describe('command line', () => {
  test('--version and --help (generated from the settings table)', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const v = await runCli(['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.output.trim(), pkg.version);
    const h = await runCli(['serve', '--help']);
    assert.equal(h.code, 0);
    for (const flag of ['--bind', '--workers', '--timeout', '--boot-timeout', '--graceful-timeout', '--max-requests', '--max-requests-jitter', '--max-memory', '--keep-alive-timeout', '--config', '--env-file', '--access-log', '--access-log-format', '--error-log', '--log-level', '--log-dir']) {
      assert.match(h.output, new RegExp(`${flag} <`), flag);
    }
    assert.match(h.output, /\[env CORRAL_WORKERS; default: usable CPUs/);
  });

  test('invalid settings exit 78 with one line naming the setting, source, value and rule', async () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [[app('hello.mjs')], { CORRAL_WORKERS: 'four' }, /^corral: error E_CONFIG_VALUE: workers \(from env CORRAL_WORKERS\): "four" is not valid: must be a whole number from 1 to 1024, or a range MIN\.\.MAX such as 2\.\.8$/m],
      [['--timeout', '-1', app('hello.mjs')], {}, /^corral: error E_CONFIG_VALUE: timeout \(from command line --timeout\): "-1" is not valid/m],
      [['--bind', 'nowhere', app('hello.mjs')], {}, /^corral: error E_CONFIG_VALUE: bind \(from command line --bind\): "nowhere" is not valid: "nowhere" has no port/m],
      [['--config', '/nonexistent/corral.config.json', app('hello.mjs')], {}, /^corral: error E_CONFIG_FILE: config file \/nonexistent\/corral\.config\.json does not exist$/m],
      [[], {}, /^corral: error E_NO_APP: no app to serve/m],
    ];
    for (const [args, env, re] of cases) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 78, r.output);
      assert.match(r.output, re);
      assert.equal(r.output.trim().split('\n').length, 1, `one line: ${r.output}`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-'));
    writeFileSync(join(dir, 'corral.config.json'), '{"workerz": 2}');
    const unknown = await runCli([app('hello.mjs')], { cwd: dir });
    assert.equal(unknown.code, 78);
    assert.match(unknown.output, /E_CONFIG_UNKNOWN: config file .*: unknown setting 'workerz'; did you mean 'workers'\?/);
    writeFileSync(join(dir, 'corral.config.json'), '{}');
    const { chmodSync } = await import('node:fs');
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'corral.config.json'), 0o000);
    const unreadable = await runCli([app('hello.mjs')], { cwd: dir, wrap: asNobody() });
    assert.equal(unreadable.code, 78);
    assert.match(unreadable.output, /E_CONFIG_FILE: config file .* cannot be loaded: EACCES/);
  });

  test('a PID or --timeout that is not exactly valid is refused with its rule, one line, exit 78, for every command', async () => {
    const pidRule = (text: string) => new RegExp(`^corral: error E_CONFIG_VALUE: PID \\(from command line\\): "${text}" is not valid: must be a whole number from 1 to 4194304 \\(Linux's largest PID\\)$`, 'm');
    const timeoutRule = (text: string) => new RegExp(`^corral: error E_CONFIG_VALUE: --timeout \\(from command line\\): "${text}" is not valid: must be a number of seconds > 0 and at most 2147483$`, 'm');
    const cases: Array<[string[], RegExp]> = [
      // 2^53 + 1: Number() would round it to 2^53, another PID
      [['status', '9007199254740993'], pidRule('9007199254740993')],
      [['reload', '--wait', '9007199254740993'], pidRule('9007199254740993')],
      [['status', '4194305'], pidRule('4194305')],
      [['reload', '0'], pidRule('0')],
      [['status', '12abc'], pidRule('12abc')],
      [['reload', '--wait', '--timeout', '0', '1'], timeoutRule('0')],
      [['status', '--timeout', 'soon', '1'], timeoutRule('soon')],
      [['health', '--timeout', '-1', '127.0.0.1:1'], timeoutRule('-1')],
      [['health', '--timeout', '1e99', '127.0.0.1:1'], timeoutRule('1e99')],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 78, `${args.join(' ')}: ${r.output}`);
      assert.match(r.output, re, args.join(' '));
      assert.equal(r.output.trim().split('\n').length, 1, `one line: ${r.output}`);
    }
  });

  test('print-config shows every value and the layer it came from', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-pc-'));
    writeFileSync(join(dir, 'corral.config.json'), JSON.stringify({ timeout: 10, maxRequests: 500 }));
    writeFileSync(join(dir, '.env'), 'CORRAL_GRACEFUL_TIMEOUT=7\n');
    const r = await runCli(['print-config', '--max-requests', '900', 'app.mjs'], { cwd: dir, env: { WEB_CONCURRENCY: '3' } });
    assert.equal(r.code, 0, r.output);
    const row = (name: string) => r.output.split('\n').find((l) => l.startsWith(name + ' '))!.replace(/\s+/g, ' ');
    assert.equal(row('app'), 'app app.mjs command line --app');
    assert.equal(row('workers'), 'workers 3 env WEB_CONCURRENCY');
    assert.equal(row('timeout'), `timeout 10 config file ${join(dir, 'corral.config.json')}`);
    assert.equal(row('graceful-timeout'), `graceful-timeout 7 env file CORRAL_GRACEFUL_TIMEOUT in ${join(dir, '.env')}`);
    assert.equal(row('max-requests'), 'max-requests 900 command line --max-requests');
    assert.equal(row('keep-alive-timeout'), 'keep-alive-timeout 75 default');
    const json = await runCli(['print-config', '--json'], { cwd: dir });
    const parsed = JSON.parse(json.output) as Record<string, { value: unknown; source: string }>;
    assert.deepEqual(parsed['max-requests'], { value: 500, source: `config file ${join(dir, 'corral.config.json')}` });
  });

  test('check: passes for a good app; names each problem and fails otherwise', async () => {
    const port = await freePort();
    const ok = await runCli(['check', '--bind', `127.0.0.1:${port}`, app('factory.mjs')]);
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.output, /ok +app .*factory\.mjs loads \(handler, with init hook, with close hook\)/);
    assert.match(ok.output, new RegExp(`ok +bind 127\\.0\\.0\\.1:${port}: free`));
    // relative log paths are checked where serve puts them: in log-dir
    const logs = mkdtempSync(join(tmpdir(), 'corral-check-logs-'));
    const rel = await runCli(['check', '--bind', `127.0.0.1:${port}`, '--log-dir', logs, '--access-log', 'access.log', app('hello.mjs')], { cwd: '/' });
    assert.equal(rel.code, 0, rel.output);
    assert.match(rel.output, new RegExp(`ok +access log ${logs}/access\\.log: writable`));
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve));
    try {
      const r = await runCli(['check', '--bind', `127.0.0.1:${port}`, '--log-dir', '/nonexistent-logs', app('throws-at-load.mjs')]);
      assert.equal(r.code, 4, 'an app that cannot load makes check exit 4');
      assert.match(r.output, /FAIL +app .*failed to load: Error: this app cannot start/);
      assert.match(r.output, new RegExp(`FAIL +bind 127\\.0\\.0\\.1:${port}: address already in use`));
      assert.match(r.output, /FAIL +log-dir \/nonexistent-logs does not exist/);
      assert.match(r.output, /E_CHECK_FAILED: 3 problem\(s\) found/);
    } finally {
      busy.close();
    }
  });

  test('check runs the binds as serve does: an open descriptor that is not a socket fails both, with exit 78', async () => {
    const wrap = ['bash', '-c', 'exec 3</etc/hostname; exec "$0" "$@"'];
    const checked = await runCli(['check', '--bind', 'fd://3', app('hello.mjs')], { wrap });
    assert.equal(checked.code, 78, checked.output);
    assert.match(checked.output, /FAIL +bind fd:\/\/3: .*not an open socket/);
    const served = await runCli(['--bind', 'fd://3', app('hello.mjs')], { wrap });
    assert.equal(served.code, 78, served.output);
    assert.match(served.output, /E_LISTEN_FDS: --bind fd:\/\/3 is not an open socket/);
  });
});
