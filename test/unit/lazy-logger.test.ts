import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lazyLogger } from '../../src/logging/lazy-logger.js';
import { createLogger } from '../../src/logging/logger.js';

const OPTS = { level: 'info', base: { pid: 1, role: 'worker', worker: '1.1' } };

/** Collects lines; `time` is dropped so lines from two loggers compare equal. */
function collector(): { lines: Record<string, unknown>[]; write(line: string): void } {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    write(line: string) {
      const rec = JSON.parse(line) as Record<string, unknown>;
      assert.match(String(rec.time), /^\d{4}-\d\d-\d\dT/);
      delete rec.time;
      lines.push(rec);
    },
  };
}

describe('lazy logger', () => {
  test('writes the same lines as the eager logger', () => {
    const eager = collector();
    const lazy = collector();
    for (const [log, out] of [[createLogger(OPTS, eager), eager], [lazyLogger(OPTS, lazy), lazy]] as const) {
      log.debug('hidden');
      log.info('plain');
      log.warn({ status: 504, url: '/x' }, 'slow request');
      log.error({ err: new Error('boom') }, 'failed');
      assert.ok(out.lines.length === 3);
    }
    assert.deepEqual(lazy.lines.map((l) => ({ ...l, err: undefined })), eager.lines.map((l) => ({ ...l, err: undefined })));
    assert.equal((lazy.lines[2]!.err as { message: string }).message, 'boom');
  });

  test('creates nothing until a line at an enabled level is written', () => {
    let writes = 0;
    const log = lazyLogger({ ...OPTS, level: 'warn' }, { write: () => writes++ });
    log.debug('no');
    log.info('no');
    assert.equal(log.level, 'warn');
    assert.equal(writes, 0);
    log.level = 'info';
    log.info('yes');
    assert.equal(writes, 1);
    assert.equal(log.level, 'info');
    log.level = 'error';
    log.warn('no');
    assert.equal(writes, 1);
  });

  test('anything else is the pino logger itself', () => {
    const out = collector();
    const log = lazyLogger(OPTS, out);
    assert.equal(log.isLevelEnabled('info'), true);
    log.child({ request_id: 'r1' }).info('from a child');
    assert.equal(out.lines[0]!.request_id, 'r1');
  });
});
