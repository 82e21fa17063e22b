import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { HeldConnections } from '../../src/metrics/held-connections.js';

/** An HTTP server guarded as the metrics listener is, with small limits. */
async function guarded(limits: { max: number; headMs: number; answerMs: number }, answer = (res: import('node:http').ServerResponse) => res.end('ok')): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const held = new HeldConnections(limits);
  const server = createServer((req, res) => {
    held.requested(req.socket);
    res.once('close', () => held.answered(req.socket));
    answer(res);
  });
  const accepted: Socket[] = [];
  server.on('connection', (s) => {
    held.accepted(s);
    accepted.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, accepted };
}

const sockets: Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
});

/** A raw connection, open once the server has it. */
async function open(port: number): Promise<{ s: Socket; closed: () => boolean; received: () => string }> {
  const s = connect(port, '127.0.0.1');
  sockets.push(s);
  let closed = false;
  let data = '';
  s.on('close', () => (closed = true)).on('error', () => {}).on('data', (c: Buffer) => (data += c.toString()));
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  return { s, closed: () => closed, received: () => data };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the metrics listener\'s connection guard', () => {
  test('at the cap, a new connection is taken and the one idle the longest is closed for it', async () => {
    const { server, port } = await guarded({ max: 3, headMs: 60_000, answerMs: 60_000 });
    try {
      const a = await open(port);
      const b = await open(port);
      const c = await open(port);
      await new Promise((r) => setTimeout(r, 50)); // let the server accept all three in order
      // b sends a request and is answered: it has now been idle for less time than a and c
      b.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await until(() => b.received().includes('ok'), 2000, 'b answered');
      const d = await open(port);
      d.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await until(() => d.received().includes('ok'), 2000, 'the newest connection is answered');
      await until(() => a.closed(), 2000, 'a, idle the longest, closed');
      assert.equal(c.closed(), false, 'c stays');
      assert.equal(b.closed(), false, 'b, idle again only since its answer, stays');
      const e = await open(port);
      await until(() => c.closed(), 2000, 'then c, idle longer than b');
      assert.equal(b.closed() || d.closed() || e.closed(), false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('a connection without a complete request head is closed at its own deadline, not at a sweep', async () => {
    const { server, port } = await guarded({ max: 100, headMs: 300, answerMs: 60_000 });
    try {
      const idle = await open(port);
      const slow = await open(port);
      const t0 = Date.now();
      slow.s.write('GET /li');
      const drip = setInterval(() => slow.s.write('v'), 50);
      try {
        await until(() => idle.closed() && slow.closed(), 3000, 'both closed');
      } finally {
        clearInterval(drip);
      }
      assert.ok(Date.now() - t0 < 3000);
      // A keep-alive connection gets the same deadline again after each answer.
      const kept = await open(port);
      kept.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await until(() => kept.received().includes('ok'), 2000, 'answered');
      assert.equal(kept.closed(), false);
      await until(() => kept.closed(), 3000, 'idle after its answer, closed at the head deadline');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('an answer the client does not read is cut at the answer deadline', async () => {
    const big = 'x'.repeat(32 * 1024 * 1024);
    const { server, port, accepted } = await guarded({ max: 100, headMs: 60_000, answerMs: 300 }, (res) => res.end(big));
    try {
      const reader = await open(port);
      reader.s.pause();
      reader.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      // The paused client hears nothing of it; the server's end of the connection is what is closed.
      await until(() => accepted.length === 1 && accepted[0]!.destroyed, 5000, 'the unread answer cut');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
