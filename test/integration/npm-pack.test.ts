/**
 * corral installed the way a published package is: `npm pack`, then the README's
 * `npm install -g --allow-scripts=sd-notify ./corral-*.tgz`, into a temporary prefix (the
 * machine's global tree is untouched). npm 11.16+ runs a dependency's unreviewed install
 * script with a warning, npm 12 blocks it, and a global install has no project
 * package.json whose allowScripts could approve it: the sd-notify addon is built only when
 * the command line allows it. --strict-allow-scripts turns any unreviewed script into an
 * error here, so the test fails if the line stops covering every install script.
 * Dependencies come from the npm registry (npm's cache makes a second run quick).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanEnv } from '../helpers/corral.js';
import { waitHttp } from '../helpers/http.js';
import { ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';

function npm(args: string[], cwd: string, timeoutMs = 120_000) {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...cleanEnv(), npm_config_update_notifier: 'false' } });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

const hasNpm = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = !hasNpm
  ? 'needs npm'
  : npm(['ping'], ROOT, 30_000).code !== 0
    ? 'needs the npm registry (npm ping failed) for corral\'s dependencies'
    : undefined;

describe('npm pack, then npm install -g of the tarball', { skip, timeout: 240_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'corral-pack-'));
  const prefix = join(tmp, 'prefix');
  const home = join(prefix, 'lib/node_modules/corral');
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("the README's install line installs corral with the sd-notify addon built", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const line = /^(?:sudo )?npm install -g (--allow-scripts=\S+) \.\/corral-\*\.tgz/m.exec(readme);
    assert.ok(line, 'README installs the tarball with `npm install -g --allow-scripts=... ./corral-*.tgz`');
    assert.equal(line[1], '--allow-scripts=sd-notify');

    const pack = npm(['pack', '--pack-destination', tmp], ROOT);
    assert.equal(pack.code, 0, pack.out);
    const tgz = readdirSync(tmp).find((f) => /^corral-.*\.tgz$/.test(f));
    assert.ok(tgz, pack.out);

    // npm 11's --strict-allow-scripts needs the global root to exist.
    mkdirSync(join(prefix, 'lib/node_modules'), { recursive: true });
    const install = npm(['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', line[1], '--strict-allow-scripts', join(tmp, tgz)], tmp, 180_000);
    assert.equal(install.code, 0, install.out);
    assert.doesNotMatch(install.out, /not (yet )?covered by allowScripts|scripts blocked/i, install.out);

    const addon = spawnSync(process.execPath, ['-e', "require('sd-notify')"], { cwd: home, encoding: 'utf8' });
    assert.equal(addon.status, 0, `the sd-notify addon does not load from ${home} (libsystemd-dev, python3, make and g++ installed? scripts/setup installs them):\n${addon.stderr}`);
  });

  test('corral from that prefix serves examples/hello.mjs and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(join(prefix, 'bin/corral'), ['--bind', `127.0.0.1:${port}`, '--workers', '1', join(home, 'examples/hello.mjs')], {
      cwd: tmp, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const r = await waitHttp(port, 20_000);
      assert.match(r.body, /^hello from worker \d+/);
      process.kill(child.pid!, 'SIGTERM');
      assert.equal(await exited, 0, output);
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
});
