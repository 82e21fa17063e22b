import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

/**
 * Each source file's imports of other source files, as paths relative to `dir` (types too:
 * a cycle of types is still a cycle to read).
 */
function sourceImports(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.ts'));
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    const deps = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)\.js'/g)]
      .map((m) => relative(dir, resolve(dir, dirname(f), `${m[1]}.ts`)));
    graph.set(f, [...new Set(deps)]);
  }
  return graph;
}

/** One import cycle as a path (a.ts -> b.ts -> a.ts), or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'open');
    path.push(node);
    for (const dep of graph.get(node) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('source structure', () => {
  test('the cycle finder finds a cycle through a type import', () => {
    assert.deepEqual(findCycle(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['b.ts']]])), ['b.ts', 'c.ts', 'b.ts']);
    assert.equal(findCycle(new Map([['a.ts', ['b.ts']], ['b.ts', []]])), undefined);
  });

  test('no file of src/ imports itself through other files', () => {
    const graph = sourceImports(join(ROOT, 'src'));
    assert.ok(graph.size >= 80, `read the sources (${graph.size} files)`);
    assert.ok(graph.get('logging/access-pretty.ts')!.includes('logging/line-escape.ts'), 'imports are read');
    assert.ok(graph.get('master/master.ts')!.includes('config/resolve.ts'), 'imports across folders are read');
    const cycle = findCycle(graph);
    assert.equal(cycle, undefined, `import cycle: ${cycle?.join(' -> ')}`);
  });

  // knip reads the entry points (knip.json: the CLI, the worker, the spare, gen-docs, the
  // tests, the bench and the examples) and follows every import: an export no other file
  // imports is either dead or should not be exported.
  test('every export of src/, test/ and bench/ is imported somewhere (knip)', () => {
    const knip = join(ROOT, 'node_modules/knip/bin/knip.js');
    const run = spawnSync(process.execPath, [knip, '--no-progress', '--no-config-hints'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, `knip found unused code:\n${run.stdout}${run.stderr}`);
  });
});
