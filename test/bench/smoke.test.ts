import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

// The benchmark suite in smoke mode: every scenario, every contender, a second or two of load
// each. It checks that the suite runs and reports without errors, not how fast anything is.
describe('benchmark suite (smoke)', () => {
  test('every scenario runs against every contender and writes a report, with no errors', () => {
    const out = mkdtempSync(join(tmpdir(), 'corral-bench-smoke-'));
    const r = spawnSync(process.execPath, ['bench/run.mjs', 'all', '--smoke', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, output.slice(-3000));
    assert.match(output, /total \d+s, 0 error\(s\)/);
    const report = readFileSync(join(out, 'RESULTS.md'), 'utf8');
    for (const scenario of ['keepalive', 'close', 'nginx', 'cpu', 'balance', 'reload', 'startup', 'memory', 'logging', 'websocket', 'scaling']) {
      assert.match(report, new RegExp(`^## ${scenario}$`, 'm'), `${scenario} is in the report`);
      assert.ok(readdirSync(out).some((f) => f.startsWith(`${scenario}-`) && f.endsWith('.json')), `${scenario} wrote its JSON`);
    }
    for (const contender of ['corral', 'single', 'cluster-rr', 'cluster-none', 'pm2']) assert.match(report, new RegExp(`\\| ${contender} \\|`));
    assert.match(report, /reload under load: corral failed requests, all runs: 0/);
    assert.match(report, /WebSocket reload: corral errors \(.*\), all runs: 0 /);
  });
});
