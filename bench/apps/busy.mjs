// A request that holds its worker's event loop: each one derives a key (PBKDF2-SHA256,
// 1000 rounds, under 1 ms of CPU) and then blocks for BENCH_BLOCK_MS (3 by default) in a
// synchronous wait that costs no CPU (Atomics.wait), as a synchronous call into a slow
// library or disk would. One worker then answers at most a few hundred requests a second
// whatever the cores, so more workers answer a burst sooner even on a 2-core machine where
// the load generator takes a core of its own. Used by the scaling scenario.
import { pbkdf2Sync } from 'node:crypto';

const BLOCK_MS = Number(process.env.BENCH_BLOCK_MS ?? 3);
const cell = new Int32Array(new SharedArrayBuffer(4));

export default function busy(req, res) {
  const key = pbkdf2Sync('corral', 'bench-salt', 1000, 16, 'sha256').toString('hex');
  if (BLOCK_MS > 0) Atomics.wait(cell, 0, 0, BLOCK_MS);
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': key.length });
  res.end(key);
}
