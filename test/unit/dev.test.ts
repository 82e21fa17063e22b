import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { compileGlobs } from '../../src/dev/glob.js';
import { Watcher } from '../../src/dev/watch.js';
import { codeFrame, locationFromStack } from '../../src/dev/code-frame.js';
import { prettyAccessLine, sizeText, durationText } from '../../src/logging/access-pretty.js';
import { terminalAccessFormat } from '../../src/logging/terminal-access.js';
import { compileAccessFormat, type AccessRecord } from '../../src/logging/access-format.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('dev: glob matcher', () => {
  test('segment patterns match any segment, anchored ones the path from the root', () => {
    const m = compileGlobs(['*.log', 'tmp', 'data/**', 'src/*.gen.{js,ts}', 'a?c', '[!x]y']);
    assert.ok(m('server.log'));
    assert.ok(m('deep/dir/server.log'));
    assert.ok(m('tmp/x.js'), 'a directory name ignores what is below it');
    assert.ok(m('a/tmp'));
    assert.ok(m('data/x/y.json'));
    assert.ok(!m('src/data/x.json'), 'an anchored pattern starts at the root');
    assert.ok(m('src/a.gen.ts'));
    assert.ok(!m('src/a.gen.mjs'));
    assert.ok(!m('src/sub/a.gen.ts'), '* stays within one segment');
    assert.ok(m('abc') && !m('abbc'));
    assert.ok(m('ay') && !m('xy'));
    assert.ok(!m('server.mjs'));
    assert.ok(compileGlobs(['**/*.test.mjs'])('a/b/c.test.mjs'));
    assert.ok(compileGlobs(['**/*.test.mjs'])('c.test.mjs'));
  });
});

describe('dev: watcher', () => {
  for (const poll of [false, true]) {
    test(`a burst of saves is one change; ignored paths are not seen (${poll ? 'polling' : 'inotify'})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'corral-watch-'));
      mkdirSync(join(dir, 'node_modules'));
      mkdirSync(join(dir, 'lib'));
      writeFileSync(join(dir, 'app.mjs'), '1');
      const batches: string[][] = [];
      const w = new Watcher({
        roots: [dir], files: [], ignore: ['*.tmp'], ignorePaths: [join(dir, 'logs')], keep: [join(dir, 'app.mjs')],
        poll, pollIntervalMs: 50, debounceMs: poll ? 120 : 60, onChange: (f) => batches.push(f),
      });
      w.start();
      try {
        await sleep(100);
        writeFileSync(join(dir, 'node_modules', 'x.js'), 'x');
        writeFileSync(join(dir, 'a.tmp'), 'x');
        mkdirSync(join(dir, 'logs'));
        writeFileSync(join(dir, 'logs', 'access.log'), 'x');
        await sleep(400);
        assert.equal(batches.length, 0, `ignored changes are not reported: ${JSON.stringify(batches)}`);
        for (let i = 0; i < 5; i++) {
          writeFileSync(join(dir, 'app.mjs'), String(i));
          writeFileSync(join(dir, 'lib', 'b.mjs'), String(i));
          await sleep(5);
        }
        const end = Date.now() + 5000;
        while (batches.length === 0 && Date.now() < end) await sleep(20);
        await sleep(400);
        assert.equal(batches.length, 1, `one change for the burst: ${JSON.stringify(batches)}`);
        assert.deepEqual([...(batches[0] as string[])].sort(), [join(dir, 'app.mjs'), join(dir, 'lib', 'b.mjs')]);
      } finally {
        w.close();
      }
    });
  }

  test('a new directory is watched too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-watch-'));
    const seen: string[] = [];
    const w = new Watcher({ roots: [dir], files: [], ignore: [], ignorePaths: [], keep: [], poll: false, pollIntervalMs: 50, debounceMs: 30, onChange: (f) => seen.push(...f) });
    w.start();
    try {
      mkdirSync(join(dir, 'routes'));
      await sleep(150);
      seen.length = 0;
      writeFileSync(join(dir, 'routes', 'a.mjs'), 'x');
      const end = Date.now() + 5000;
      while (!seen.includes(join(dir, 'routes', 'a.mjs')) && Date.now() < end) await sleep(20);
      assert.ok(seen.includes(join(dir, 'routes', 'a.mjs')), JSON.stringify(seen));
    } finally {
      w.close();
    }
  });
});

describe('dev: code frame', () => {
  test('the first frame outside corral and node, and the lines around it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-frame-'));
    const file = join(dir, 'app.mjs');
    writeFileSync(file, 'a\nb\nc\nthrow new Error("x")\nd\ne\nf\n');
    const stack = `Error: x\n    at ModuleJob.run (node:internal/modules/esm/module_job:325:25)\n    at load (/opt/corral/dist/src/worker/app-loader.js:10:3)\n    at file://${file}:4:7\n`;
    const loc = locationFromStack(stack, ['/opt/corral/dist/src']);
    assert.deepEqual(loc, { file, line: 4, column: 7 });
    assert.equal(codeFrame(loc!), ['  2 | b', '  3 | c', '> 4 | throw new Error("x")', '    |       ^', '  5 | d', '  6 | e'].join('\n'));
  });
});

describe('access lines for a terminal', () => {
  const rec = (over: Partial<AccessRecord> = {}): AccessRecord => ({
    time: new Date(), method: 'GET', url: '/nope', httpVersion: '1.1', status: 404, bytes: 24, durationMs: 0.92,
    remoteAddr: '127.0.0.1', requestId: 'r', pid: 1, worker: '1.1', rawHeaders: [], res: { getHeader: () => undefined }, ...over,
  });

  test('GET /nope 404 24 B 0.9 ms, coloured by status when asked', () => {
    assert.equal(compileAccessFormat('pretty')(rec()), 'GET /nope 404 24 B 0.9 ms');
    assert.equal(prettyAccessLine(rec({ url: '/a\nb\u2028' }), false), 'GET /a\\x0Ab\\xE2\\x80\\xA8 404 24 B 0.9 ms', 'line breakers are escaped');
    const coloured = compileAccessFormat('pretty-color')(rec({ status: 500 }));
    assert.match(coloured, /^GET \/nope \x1b\[31m500\x1b\[0m /);
    assert.match(compileAccessFormat('pretty-color')(rec({ status: 200 })), /\x1b\[32m200/);
    assert.equal(sizeText(1536), '1.5 kB');
    assert.equal(sizeText(2_500_000), '2.5 MB');
    assert.equal(durationText(12.4), '12 ms');
    assert.equal(durationText(1500), '1.50 s');
  });

  test('chosen for a terminal only when the format is left at its default', () => {
    const base = { configured: 'json', fromDefault: true, toStdout: true, tty: true, dev: false };
    assert.equal(terminalAccessFormat(base), 'pretty-color');
    assert.equal(terminalAccessFormat({ ...base, tty: false }), 'json', 'a pipe or journald keeps the format');
    assert.equal(terminalAccessFormat({ ...base, tty: false, dev: true }), 'pretty', 'dev: readable without colours');
    assert.equal(terminalAccessFormat({ ...base, toStdout: false, dev: true }), 'json', 'a file keeps the format');
    assert.equal(terminalAccessFormat({ ...base, configured: 'combined', fromDefault: false }), 'combined', 'a chosen format is kept');
  });
});
