// The one app every contender serves: 200 'hello world'.
//
// Default export: a plain (req, res) handler, which is what corral loads.
// Run directly (single, node:cluster workers, pm2) with BENCH_PORT set, it
// listens by itself on BENCH_HOST:BENCH_PORT.
//
// With BENCH_STATS_DIR set, the process registers itself by creating
// <dir>/<pid>.ndjson, and appends one line {pid, conns, reqs} to it each time
// it gets SIGUSR2. The bench signals every registered pid before and after a
// load and takes the difference, so the counts work the same whatever
// supervisor started the process (corral, node:cluster, pm2).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const BODY = 'hello world';
const counted = Symbol('bench.counted');
let conns = 0;
let reqs = 0;

export default function hello(req, res) {
  reqs++;
  // Count connections that carried at least one request. Done here, not on
  // the server's 'connection' event, because under corral the app does not
  // own the server.
  const socket = req.socket;
  if (!socket[counted]) {
    socket[counted] = true;
    conns++;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
}

export { hello as handler };

function setupStats(dir) {
  const file = path.join(dir, `${process.pid}.ndjson`);
  const line = () => `${JSON.stringify({ pid: process.pid, conns, reqs })}\n`;
  // One short append per line: O_APPEND keeps each line whole.
  fs.appendFileSync(file, line());
  process.on('SIGUSR2', () => fs.appendFileSync(file, line()));
}

if (process.env.BENCH_STATS_DIR) setupStats(process.env.BENCH_STATS_DIR);

if (process.env.BENCH_PORT) {
  const server = http.createServer(hello);
  server.listen(Number(process.env.BENCH_PORT), process.env.BENCH_HOST || '127.0.0.1');
}
