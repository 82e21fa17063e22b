// Long-lived connections for the websocket scenario: a WebSocket echo (the `ws` package in
// its noServer mode, handed each upgrade by corral through the `upgrade` export) and a
// Server-Sent Event stream at /events that sends one event a second and never ends.
// Anything else answers 200 'hello world' (the readiness probe, plain requests).
//
// Every answer tells the client which process serves it, in an X-Served-By response header
// (on the 101 of an upgrade too), so a client can tell an old worker from a new one after a
// reload.
//
// With BENCH_STATS_DIR set, the process registers itself by creating <dir>/<pid>.ndjson,
// as apps/hello.mjs does, so the bench can list the workers that run it.
//
// Run directly with BENCH_PORT set, it listens by itself on BENCH_HOST:BENCH_PORT.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocketServer } from 'ws';

const SERVED_BY = `X-Served-By: ${process.pid}`;
const EVENT_EVERY_MS = 1000;

const wss = new WebSocketServer({ noServer: true });
wss.on('headers', (headers) => headers.push(SERVED_BY));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

export function upgrade(req, socket, head) {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
}

function events(req, res) {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'X-Served-By': String(process.pid),
  });
  let n = 0;
  res.write(`retry: 1000\nid: ${n}\ndata: ${process.pid}\n\n`);
  const timer = setInterval(() => res.write(`id: ${++n}\ndata: ${process.pid}\n\n`), EVENT_EVERY_MS);
  res.on('close', () => clearInterval(timer));
}

export default function app(req, res) {
  if (req.url === '/events' || req.url.startsWith('/events?')) return events(req, res);
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 11, 'X-Served-By': String(process.pid) });
  res.end('hello world');
}

if (process.env.BENCH_STATS_DIR) {
  fs.appendFileSync(path.join(process.env.BENCH_STATS_DIR, `${process.pid}.ndjson`), `${JSON.stringify({ pid: process.pid })}\n`);
}

if (process.env.BENCH_PORT) {
  const server = http.createServer(app);
  server.on('upgrade', upgrade);
  server.listen(Number(process.env.BENCH_PORT), process.env.BENCH_HOST || '127.0.0.1');
}
