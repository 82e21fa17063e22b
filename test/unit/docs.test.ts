import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DOCS } from '../../src/tools/gen-docs.js';
import { ERROR_CODES } from '../../src/errors.js';
import { ROOT } from '../helpers/paths.js';

describe('generated docs', () => {
  for (const [file, render] of Object.entries(DOCS)) {
    test(`${file} matches the code (run \`npm run docs\` if this fails)`, () => {
      assert.equal(readFileSync(`${ROOT}/${file}`, 'utf8'), render());
    });
  }

  test('every error code is documented and every documented code exists', () => {
    const doc = readFileSync(`${ROOT}/docs/errors.md`, 'utf8');
    const documented = [...doc.matchAll(/^\| `(E_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(documented.sort(), Object.keys(ERROR_CODES).sort());
  });

  test('every error code used in the source is declared, and every declared one is used', () => {
    const grep = (path: string) => new Set(execSync(`grep -rhoE "'E_[A-Z_]+'" ${path} || true`, { encoding: 'utf8' }).split('\n').filter(Boolean).map((s: string) => s.slice(1, -1)));
    const used = grep(`${ROOT}/src --exclude=errors.ts`);
    for (const code of used) assert.ok(code in ERROR_CODES, `${code} is used but not declared in src/errors.ts`);
    for (const code of Object.keys(ERROR_CODES)) assert.ok(used.has(code), `${code} is declared in src/errors.ts but nothing raises it`);
  });
});
