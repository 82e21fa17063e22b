import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { parseControlLine } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';

describe('control protocol lines', () => {
  test('well-formed messages are returned checked', () => {
    assert.deepEqual(parseControlLine('{"t":"hello","pid":42,"seq":0}'), { t: 'hello', pid: 42, seq: 0 });
    assert.deepEqual(parseControlLine('{"t":"reload","seq":3,"ok":false,"detail":"boom"}'), { t: 'reload', seq: 3, ok: false, detail: 'boom' });
    assert.deepEqual(parseControlLine('{"t":"error","message":"unknown command"}'), { t: 'error', message: 'unknown command' });
  });

  test('anything else is an Error saying the line is malformed, never a crash or a wrong shape', () => {
    for (const line of ['', 'nonsense', '{"t":"hello"', 'null', '42', '[]']) {
      assert.throws(() => parseControlLine(line), /^Error: a malformed line \(not JSON\)|^Error: a malformed line \(not a control message\)/);
    }
    for (const line of ['{"t":"hello","pid":"42","seq":0}', '{"t":"hello","pid":0,"seq":0}', '{"t":"hello","pid":42}', '{"t":"reload","seq":-1,"ok":true}', '{"t":"reload","seq":1,"ok":"yes"}', '{"t":"party"}']) {
      assert.throws(() => parseControlLine(line), /not a control message/, line);
    }
  });
});

describe('control server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-control-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function client(path: string): Promise<{ s: Socket; lines: string[]; next: () => Promise<string>; closed: Promise<void> }> {
    const s = connect(path);
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    const lines: string[] = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l);
      waiters.splice(0).forEach((w) => w());
    });
    let read = 0;
    const next = async () => {
      while (lines.length <= read) await new Promise<void>((r) => waiters.push(r));
      return lines[read++]!;
    };
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    return { s, lines, next, closed };
  }

  test('answers watch with its pid, unknown or malformed commands with an error, and hangs up on floods', async () => {
    const path = join(dir, 'c.sock');
    const server = await ControlServer.listen(path);
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      server.onWatch(() => 7);
      const a = await client(path);
      a.s.write('{"not":"a command"}\r\nwatch\n');
      assert.deepEqual(JSON.parse(await a.next()), { t: 'error', message: 'unknown command "{\\"not\\":\\"a command\\"}"' });
      assert.deepEqual(JSON.parse(await a.next()), { t: 'hello', pid: process.pid, seq: 7 });
      server.broadcast({ t: 'reload', seq: 8, ok: true, detail: 'fine' });
      assert.deepEqual(JSON.parse(await a.next()), { t: 'reload', seq: 8, ok: true, detail: 'fine' });
      a.s.destroy();

      const flood = await client(path);
      flood.s.write('x'.repeat(10_000));
      await flood.closed;
      assert.deepEqual(flood.lines, [], 'a flood gets no answer, only a hang-up');
    } finally {
      server.close();
    }
  });
});
