/**
 * A bounded HTTP load client for the end-to-end tests, run inside a sandbox (loopback
 * only). It stops by itself after --requests requests or --seconds seconds, whichever
 * comes first, or earlier once --stop-file exists. Prints one JSON summary on stdout.
 *
 *   node load.js --url http://127.0.0.1:8000 | --socket /run/corral/x.sock
 *                [--path /] [--concurrency 8] [--keepalive] --requests N --seconds S
 *                [--stop-file F] [--progress-file F] [--tag T] [--request-id]
 *
 * Without --keepalive every request uses a new connection (as nginx does without an
 * upstream keepalive pool). With --request-id each request also carries
 * `X-Request-Id: TAG-N` (N counts from 0), which corral logs as the request id. Failures are counted by cause: a connection error code
 * (ECONNREFUSED, ECONNRESET, ...), a timeout, or a status other than 200.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    socket: { type: 'string' },
    path: { type: 'string', default: '/' },
    concurrency: { type: 'string', default: '8' },
    keepalive: { type: 'boolean', default: false },
    requests: { type: 'string' },
    seconds: { type: 'string' },
    'stop-file': { type: 'string' },
    'progress-file': { type: 'string' },
    tag: { type: 'string', default: 'load' },
    'request-id': { type: 'boolean', default: false },
  },
});

const maxRequests = Number(opt.requests);
const maxSeconds = Number(opt.seconds);
if (!(maxRequests > 0) || !(maxSeconds > 0)) throw new Error('--requests and --seconds are required (the run must be bounded)');
if (!opt.url && !opt.socket) throw new Error('--url or --socket is required');
const concurrency = Number(opt.concurrency);
const target = opt.url ? new URL(opt.url) : undefined;
if (target && !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) throw new Error('loopback targets only');

const agent = new Agent({ keepAlive: opt.keepalive, maxSockets: concurrency });
const deadline = Date.now() + maxSeconds * 1000;
const started = Date.now();
let issued = 0;
let stopped = false;
const result = {
  total: 0,
  ok: 0,
  failed: 0,
  errors: {} as Record<string, number>,
  statuses: {} as Record<string, number>,
  bodies: {} as Record<string, number>,
  samples: [] as string[],
  elapsedMs: 0,
};

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

function fail(cause: string, detail: string): void {
  result.failed++;
  count(result.errors, cause);
  if (result.samples.length < 20) result.samples.push(`${new Date().toISOString()} ${cause}: ${detail}`);
}

function once(n: number): Promise<void> {
  return new Promise((resolve) => {
    const path = `${opt.path}${opt.path!.includes('?') ? '&' : '?'}rid=${opt.tag}-${n}`;
    const req = request(
      {
        agent,
        socketPath: opt.socket,
        host: target?.hostname.replace(/^\[|\]$/g, ''),
        port: target?.port,
        path,
        headers: {
          ...(opt.keepalive ? {} : { connection: 'close' }),
          ...(opt['request-id'] ? { 'x-request-id': `${opt.tag}-${n}` } : {}),
        },
        timeout: 15_000,
      },
      (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          count(result.statuses, String(res.statusCode));
          if (res.statusCode === 200) {
            result.ok++;
            count(result.bodies, body.split(' ').slice(0, 2).join(' ').trim());
          } else {
            fail(`HTTP ${res.statusCode}`, body.slice(0, 200));
          }
          resolve();
        });
        res.on('error', (err: NodeJS.ErrnoException) => {
          fail(err.code ?? err.message, `response: ${err.message}`);
          resolve();
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('no response in 15 s'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      fail(err.code ?? err.message, err.message);
      resolve();
    });
    req.end();
  });
}

function shouldStop(): boolean {
  if (stopped) return true;
  if (issued >= maxRequests || Date.now() >= deadline) stopped = true;
  else if (opt['stop-file'] && issued % 20 === 0 && existsSync(opt['stop-file'])) stopped = true;
  return stopped;
}

async function loop(): Promise<void> {
  while (!shouldStop()) {
    const n = issued++;
    await once(n);
    result.total++;
  }
}

const progress = opt['progress-file']
  ? setInterval(() => writeFileSync(opt['progress-file']!, String(result.total)), 100)
  : undefined;

await Promise.all(Array.from({ length: concurrency }, loop));
if (progress) clearInterval(progress);
if (opt['progress-file']) writeFileSync(opt['progress-file'], String(result.total));
agent.destroy();
result.elapsedMs = Date.now() - started;
process.stdout.write(JSON.stringify(result) + '\n');
