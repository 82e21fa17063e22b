import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

const load = (file: string) => import(pathToFileURL(join(ROOT, 'bench', 'lib', file)).href);

// bench/MISSES.md is hand-written but its figures come from the stored results: a renamed
// target or metric label would leave a "(no result: ...)" in RESULTS.md.
describe('missed-targets section of RESULTS.md', () => {
  test('every placeholder in bench/MISSES.md matches the stored results', async () => {
    const { missesSection } = await load('misses.mjs');
    const { latestResults } = await load('report.mjs');
    const lines = missesSection(latestResults(join(ROOT, 'bench', 'results'))) as string[];
    assert.match(lines[0] ?? '', /^## Targets missed/);
    assert.deepEqual(lines.filter((l) => l.includes('(no result') || l.includes('{{')), []);
  });

  test('gaps are said in the direction of the goal', async () => {
    const { gapText } = await load('misses.mjs');
    assert.equal(gapText({ value: 0.9, op: '>=', goal: 1, unit: 'x', pass: false }), '10% short');
    assert.equal(gapText({ value: 3.06, op: '<=', goal: 1.2, unit: 'x', pass: false }), '155% over');
    assert.equal(gapText({ value: 7, op: '<=', goal: 5, unit: ' MiB', pass: false }), '2 MiB over');
    assert.equal(gapText({ value: 1.1, op: '>=', goal: 1, unit: 'x', pass: true }), 'met');
  });
});
