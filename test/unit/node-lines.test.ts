/**
 * The Node.js lines the tests run on (scripts/node-lines) cover every line corral supports,
 * and the README's table and the package's engines say the same. Nothing is installed here:
 * `--list` only prints the pinned releases.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

function pinned(): string[] {
  const r = spawnSync('bash', [`${ROOT}/scripts/node-lines`, '--list'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

const major = (release: string): number => Number(release.split('.')[0]);

describe('tested Node.js lines', () => {
  test('one release of each even line, from the engines minimum up, none twice', () => {
    const releases = pinned();
    for (const r of releases) assert.match(r, /^\d+\.\d+\.\d+$/);
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { engines: { node: string } };
    const min = Number(/^>=(\d+)$/.exec(pkg.engines.node)?.[1]);
    assert.ok(min > 0, `engines.node is ">=N": ${pkg.engines.node}`);
    const majors = releases.map(major);
    const expected = Array.from({ length: majors.length }, (_, i) => min + 2 * i);
    assert.deepEqual(majors, expected, 'consecutive even lines from the minimum the engines allow');
  });

  test('the README names each tested release in its table of lines', () => {
    const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
    const start = readme.indexOf('### Node.js lines');
    assert.ok(start >= 0, 'the README has a "Node.js lines" section');
    const section = readme.slice(start, readme.indexOf('\n## ', start));
    const rows = [...section.matchAll(/^\| (\d+) \| [^|]+ \| ([^|]+) \|/gm)].map((m) => [Number(m[1]), m[2]!.trim()] as const);
    assert.deepEqual(rows.map(([line]) => line), pinned().map(major), 'one row a line, in order');
    for (const r of pinned()) assert.ok(rows.some(([line, cell]) => line === major(r) && cell.startsWith(r)), `the row of ${major(r)} says ${r}`);
  });
});
