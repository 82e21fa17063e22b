import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CLOSE_NO_STATUS, closeFrame, FrameScanner } from '../../src/worker/ws-frames.js';

/** A frame as a client sends it (masked with `mask`) or a server does (unmasked). */
function frame(opcode: number, payload: Buffer, mask?: Buffer): Buffer {
  const len = payload.length;
  const ext = len < 126 ? Buffer.alloc(0) : len < 65536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (len >= 126 && len < 65536) ext.writeUInt16BE(len);
  else if (len >= 65536) ext.writeBigUInt64BE(BigInt(len));
  const head = Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127)]);
  const body = mask ? Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!)) : payload;
  return Buffer.concat([head, ext, mask ?? Buffer.alloc(0), body]);
}

function close(code: number, reason = ''): Buffer {
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code);
  p.write(reason, 2);
  return p;
}

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** Every way of cutting `bytes` into pieces at `cuts` random places, fed in turn. */
function scanSplit(bytes: Buffer, cuts: number[]): FrameScanner {
  const s = new FrameScanner();
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    s.feed(bytes.subarray(at, c));
    at = c;
  }
  s.feed(bytes.subarray(at));
  return s;
}

describe('FrameScanner', () => {
  const stream = Buffer.concat([
    frame(0x1, Buffer.from('hello'), MASK),
    frame(0x2, Buffer.alloc(300, 7), MASK), // 16-bit length
    frame(0x9, Buffer.from('ping'), MASK),
    frame(0x2, Buffer.alloc(70_000, 1), MASK), // 64-bit length
    frame(0x0, Buffer.alloc(0), MASK),
    frame(0x8, close(1012, 'bye now'), MASK),
    frame(0x1, Buffer.from('after the close'), MASK),
  ]);

  test('finds a masked client close frame and its code behind text, binary, control and empty frames', () => {
    const s = scanSplit(stream, []);
    assert.equal(s.closeCode, 1012);
  });

  test('whatever the chunk boundaries: every single split point, and 500 random multi-way splits', () => {
    for (let i = 0; i <= stream.length; i += i < 400 ? 1 : 97) assert.equal(scanSplit(stream, [i]).closeCode, 1012, `split at ${i}`);
    // Byte by byte around the close frame, where the code straddles chunks.
    const closeAt = stream.length - frame(0x1, Buffer.from('after the close'), MASK).length - frame(0x8, close(1012, 'bye now'), MASK).length;
    const cuts = Array.from({ length: 20 }, (_, k) => closeAt - 2 + k);
    assert.equal(scanSplit(stream, cuts).closeCode, 1012);
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let n = 0; n < 500; n++) {
      const k = 1 + Math.floor(rnd() * 12);
      const split = Array.from({ length: k }, () => Math.floor(rnd() * (stream.length + 1)));
      assert.equal(scanSplit(stream, split).closeCode, 1012, `split at ${split.join(',')}`);
    }
  });

  test('unmasked server frames', () => {
    const out = Buffer.concat([frame(0x1, Buffer.from('x'.repeat(200))), frame(0xa, Buffer.from('pong')), frame(0x8, close(4000, 'done'))]);
    for (let i = 0; i <= out.length; i++) assert.equal(scanSplit(out, [i]).closeCode, 4000, `split at ${i}`);
  });

  test('a close frame without a code is 1005; nothing yet is undefined; no close frame, no code', () => {
    assert.equal(scanSplit(frame(0x8, Buffer.alloc(0), MASK), []).closeCode, CLOSE_NO_STATUS);
    const half = frame(0x8, close(1000), MASK);
    assert.equal(scanSplit(half.subarray(0, half.length - 1), []).closeCode, undefined);
    assert.equal(scanSplit(frame(0x1, Buffer.from('no close'), MASK), []).closeCode, undefined);
  });

  test('a length no frame can have stops the scan', () => {
    const bad = Buffer.from([0x82, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    const s = scanSplit(bad, []);
    assert.equal(s.broken, true);
    assert.equal(s.closeCode, undefined);
  });
});

describe('closeFrame', () => {
  test('FIN, opcode 8, unmasked, the code, the reason: what a ws client reads back', () => {
    const f = closeFrame(1012, 'service restart');
    assert.deepEqual([...f.subarray(0, 4)], [0x88, 17, 0x03, 0xf4]);
    assert.equal(f.subarray(4).toString(), 'service restart');
    assert.equal(scanSplit(f, []).closeCode, 1012);
  });

  test('a reason is cut to 123 bytes, never inside a character', () => {
    const f = closeFrame(1001, 'é'.repeat(100));
    assert.equal(f[1], 2 + 122);
    assert.equal(f.subarray(4).toString(), 'é'.repeat(61));
    assert.equal(closeFrame(1001, 'a'.repeat(200))[1], 125);
  });
});
