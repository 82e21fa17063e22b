import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LineWriter, type WriteFn } from '../../src/logging/line-writer.js';
import { LogFiles } from '../../src/logging/log-files.js';
import { Sink } from '../../src/logging/sink.js';
import type { WriteFailureFields } from '../../src/logging/write-failures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'corral-writer-'));
const lines = (prefix: string, n: number, width = 60) => Array.from({ length: n }, (_, i) => `${prefix}${i} ${'x'.repeat(width)}\n`).join('');

/** A policy that keeps its reports. */
function reports(errorIntervalMs = 1): { policy: ConstructorParameters<typeof LineWriter>[1]; got: Array<{ message: string } & WriteFailureFields> } {
  const got: Array<{ message: string } & WriteFailureFields> = [];
  return { got, policy: { what: 'access log', errorIntervalMs, report: (message, fields) => got.push({ message, ...fields }) } };
}

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
const eagain = () => Object.assign(new Error('EAGAIN: resource temporarily unavailable, write'), { code: 'EAGAIN' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('line writer: streams', () => {
  test('a full non-blocking pipe (short writes, EAGAIN) gets every byte, in order, once the reader reads', async () => {
    const dir = tmp();
    const fifo = join(dir, 'fifo');
    const out = join(dir, 'out');
    await new Promise<void>((resolve, reject) => spawn('mkfifo', [fifo]).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`mkfifo: ${c}`)))));
    // Our own read end lets the non-blocking write end open; the reader reads only later.
    const ourRead = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const reader = spawn('sh', ['-c', `sleep 0.3; cat "${fifo}" > "${out}"`]);
    const readerDone = new Promise((r) => reader.on('exit', r));
    const seen = { short: 0, eagain: 0 };
    const counting: WriteFn = (f, buf, off, len) => {
      try {
        const n = writeSync(f, buf, off, len);
        if (n < len) seen.short++;
        return n;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') seen.eagain++;
        throw err;
      }
    };
    const { policy, got } = reports();
    const w = new LineWriter({ kind: 'stream', fd }, policy, counting);
    // One line far beyond the pipe's 64 KiB (written whole, so cut short), then many small ones in PIPE_BUF pieces.
    const sent = `big ${'y'.repeat(200_000)}\n` + lines('s', 3000);
    w.write(sent);
    closeSync(fd);
    closeSync(ourRead);
    await readerDone;
    assert.ok(seen.short >= 1 && seen.eagain >= 1, `the pipe was full: ${JSON.stringify(seen)}`);
    assert.equal(readFileSync(out, 'utf8'), sent, 'every byte, in order');
    assert.deepEqual(got, [], 'nothing to report: a full pipe waits, it does not fail');
  });

  test('a short write then EAGAIN: the rest follows in order, nothing lost or repeated', () => {
    const file = join(tmp(), 'out');
    const fd = openSync(file, 'w');
    const script: Array<'short' | 'eagain' | 'all'> = ['short', 'eagain', 'eagain', 'short', 'all'];
    const fake: WriteFn = (f, buf, off, len) => {
      const step = script.shift() ?? 'all';
      if (step === 'eagain') throw eagain();
      return writeSync(f, buf, off, step === 'short' ? Math.min(len, 7) : len);
    };
    const w = new LineWriter({ kind: 'stream', fd }, reports().policy, fake);
    w.write('first line\nsecond line\n');
    w.write('third\n');
    closeSync(fd);
    assert.equal(readFileSync(file, 'utf8'), 'first line\nsecond line\nthird\n');
  });

  test('a stream cut mid-line by an error: the next line starts on a line of its own', () => {
    const file = join(tmp(), 'out');
    const fd = openSync(file, 'w');
    let fail = true;
    const fake: WriteFn = (f, buf, off, len) => {
      if (!fail) return writeSync(f, buf, off, len);
      if (off === 0) return writeSync(f, buf, off, 5);
      fail = false;
      throw Object.assign(new Error('EPIPE: broken pipe, write'), { code: 'EPIPE' });
    };
    const { policy, got } = reports();
    const w = new LineWriter({ kind: 'stream', fd }, policy, fake);
    w.write('abcdefgh\n');
    w.write('next\n');
    closeSync(fd);
    assert.equal(readFileSync(file, 'utf8'), 'abcde\nnext\n');
    assert.deepEqual(got.map((r) => [r.logWrite, r.dropped]), [['failed', 1], ['resumed', 1]]);
  });
});

describe('line writer: files', () => {
  test('a disk full mid-line: the fragment is removed, lines are counted and reported, and no later line of any writer is glued', async () => {
    const path = join(tmp(), 'access.log');
    let full = false;
    // What a full disk does: the bytes up to the last free block go out, then ENOSPC.
    const disk: WriteFn = (fd, buf, off, len) => {
      if (!full) return writeSync(fd, buf, off, len);
      if (off === 0 && len > 10) return writeSync(fd, buf, off, 30);
      throw enospc();
    };
    const { policy, got } = reports(20);
    const a = new LineWriter({ kind: 'file', path }, policy, disk);
    const b = new LineWriter({ kind: 'file', path }, reports(20).policy);
    a.write('{"n":1}\n');
    full = true;
    a.write('{"n":2,"pad":"aaaaaaaaaaaaaaaaaaaaaa"}\n{"n":3}\n{"n":4}\n');
    a.write('{"n":5}\n');
    // Another worker writes first when space returns.
    full = false;
    b.write('{"n":"b"}\n');
    await sleep(30);
    a.write('{"n":6}\n');
    assert.equal(readFileSync(path, 'utf8'), '{"n":1}\n{"n":"b"}\n{"n":6}\n');
    assert.equal(got.length, 2);
    assert.equal(got[0]!.logWrite, 'failed');
    assert.match(got[0]!.message, /^cannot write access log .*access\.log: ENOSPC: no space left on device, write; lines are dropped until it works again \(3 so far; reported at most every 0\.02 s\)$/);
    assert.deepEqual([got[1]!.logWrite, got[1]!.dropped], ['resumed', 4]);
    assert.match(got[1]!.message, /^access log .*access\.log is writable again \(4 line\(s\) dropped meanwhile\)$/);
  });

  test('whole lines of a batch that went out before the disk filled stay', () => {
    const path = join(tmp(), 'access.log');
    const disk: WriteFn = (fd, buf, off) => {
      if (off === 0) return writeSync(fd, buf, off, 12);
      throw enospc();
    };
    const { policy, got } = reports();
    new LineWriter({ kind: 'file', path }, policy, disk).write('{"n":1}\n{"n":2}\n{"n":3}\n');
    assert.equal(readFileSync(path, 'utf8'), '{"n":1}\n');
    assert.equal(got[0]!.dropped, 2);
  });

  test('a file left mid-line (a writer killed while cut short) gets a newline before the next line', () => {
    const path = join(tmp(), 'access.log');
    writeFileSync(path, '{"n":1}\n{"n":');
    const w = new LineWriter({ kind: 'file', path }, reports().policy);
    w.write('{"n":3}\n');
    assert.equal(readFileSync(path, 'utf8'), '{"n":1}\n{"n":\n{"n":3}\n');
  });

  test('logrotate: copytruncate keeps appending at the new end; create (rename, then reopen) moves to the new file', () => {
    const dir = tmp();
    const path = join(dir, 'access.log');
    const w = new LineWriter({ kind: 'file', path }, reports().policy);
    w.write('a\n');
    truncateSync(path, 0);
    w.write('b\n');
    assert.equal(readFileSync(path, 'utf8'), 'b\n', 'no hole of NUL bytes before the line');
    renameSync(path, join(dir, 'access.log.1'));
    w.write('c\n');
    w.reopen();
    w.write('d\n');
    w.close();
    assert.equal(readFileSync(join(dir, 'access.log.1'), 'utf8'), 'b\nc\n');
    assert.equal(readFileSync(path, 'utf8'), 'd\n');
  });
});

describe('log files: one rotation for both logs', () => {
  test('by size and by hour, numbered, the oldest beyond keep deleted, numbering continued after a restart', () => {
    const dir = tmp();
    const base = join(dir, 'error.log');
    const t0 = Date.UTC(2026, 0, 1, 10, 30);
    const files = new LogFiles(base, { size: 100, interval: 'hourly', keep: 2 }, t0);
    assert.equal(files.current, join(dir, 'error.1.log'));
    writeFileSync(files.current, 'x'.repeat(50));
    assert.equal(files.due(t0, 0), undefined, 'under the size');
    writeFileSync(files.current, 'x'.repeat(100));
    assert.equal(files.due(t0, 50), undefined, 'the size is looked at ten times a second');
    assert.equal(files.due(t0, 200), join(dir, 'error.2.log'));
    writeFileSync(files.current, 'y');
    assert.equal(files.due(t0 + 3_600_000, 201), join(dir, 'error.3.log'), 'a new hour');
    writeFileSync(files.current, 'z');
    assert.equal(files.due(t0 + 2 * 3_600_000, 202), join(dir, 'error.4.log'));
    assert.deepEqual(readdirSync(dir).sort(), ['error.2.log', 'error.3.log'], 'keep 2 besides the current one (not written yet)');
    assert.equal(new LogFiles(base, { size: 100, interval: 'off', keep: 2 }).current, join(dir, 'error.3.log'), 'a restart continues at the highest number');
  });

  test('the error log sink rotates through them by size, each file outgrowing it by one write at most', async () => {
    const dir = tmp();
    const sink = new Sink('error log', { kind: 'file', path: join(dir, 'error.log') }, { rotation: { size: 200, interval: 'off', keep: 3 }, errorIntervalMs: 1000 });
    const written: string[] = [];
    for (let i = 0; i < 20; i++) {
      const line = `{"i":${i},"pad":"${'p'.repeat(80)}"}\n`;
      sink.write(line);
      written.push(line);
    }
    await sink.close();
    const names = readdirSync(dir).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
    assert.deepEqual(names, ['error.4.log', 'error.5.log', 'error.6.log', 'error.7.log'], 'three lines a file (200 bytes reached at the third), current + 3 kept');
    const texts = names.map((n) => readFileSync(join(dir, n), 'utf8'));
    assert.ok(texts.slice(0, -1).every((t) => t.split('\n').length - 1 === 3), 'rotated as soon as the size was reached');
    assert.equal(texts.join(''), written.slice(9).join(''), 'the newest lines, whole and in order');
  });
});
