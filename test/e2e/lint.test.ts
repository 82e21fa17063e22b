/**
 * Static checks of the packaging files: shellcheck on every shell script, and bash's own
 * parser. Runs without root; skipped where shellcheck is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO } from './harness.js';

const SCRIPTS = ['scripts/install', 'scripts/uninstall', 'scripts/health-check', 'scripts/lib/common.sh', 'scripts/setup', 'scripts/node-lines', 'scripts/test-lines', '.ci/run', 'test/e2e/sd-sandbox.sh'];
const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0;

describe('shell scripts', () => {
  test('bash parses them', () => {
    for (const s of SCRIPTS) {
      const r = spawnSync('bash', ['-n', join(REPO, s)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${s}: ${r.stderr}`);
    }
  });

  test('shellcheck finds nothing', { skip: hasShellcheck ? false : 'shellcheck is not installed' }, () => {
    const r = spawnSync('shellcheck', ['--external-sources', ...SCRIPTS], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('the scripts are executable and start with set -euo pipefail', () => {
    for (const s of SCRIPTS.filter((f) => !f.endsWith('.sh') || f.includes('sd-sandbox'))) {
      const r = spawnSync('test', ['-x', join(REPO, s)]);
      assert.equal(r.status, 0, `${s} is not executable`);
      const head = spawnSync('head', ['-n', '60', join(REPO, s)], { encoding: 'utf8' }).stdout;
      assert.match(head, /^set -euo pipefail$/m, s);
    }
  });
});
