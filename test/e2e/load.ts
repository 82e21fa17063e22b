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
import { Agent } from 'node:http';
import { parseArgs } from 'node:util';
import { Bounds, once, settle, count, withProgress, type Tally } from './load-core.js';

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

const bounds = new Bounds(opt.requests, opt.seconds, opt['stop-file'], 20);
if (!opt.url && !opt.socket) throw new Error('--url or --socket is required');
const concurrency = Number(opt.concurrency);
const target = opt.url ? new URL(opt.url) : undefined;
if (target && !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) throw new Error('loopback targets only');

const agent = new Agent({ keepAlive: opt.keepalive, maxSockets: concurrency });
const result: Tally & { bodies: Record<string, number>; samples: string[] } = {
  total: 0,
  ok: 0,
  failed: 0,
  errors: {},
  statuses: {},
  bodies: {},
  samples: [],
  elapsedMs: 0,
};

function fail(cause: string, detail: string): void {
  result.failed++;
  count(result.errors, cause);
  if (result.samples.length < 20) result.samples.push(`${new Date().toISOString()} ${cause}: ${detail}`);
}

async function loop(): Promise<void> {
  for (let n = bounds.next(); n !== undefined; n = bounds.next()) {
    const o = await once({
      agent,
      socketPath: opt.socket,
      host: target?.hostname.replace(/^\[|\]$/g, ''),
      port: target?.port,
      path: `${opt.path}${opt.path!.includes('?') ? '&' : '?'}rid=${opt.tag}-${n}`,
      headers: {
        ...(opt.keepalive ? {} : { connection: 'close' }),
        ...(opt['request-id'] ? { 'x-request-id': `${opt.tag}-${n}` } : {}),
      },
    }, 15_000);
    const body = settle(result, o, fail);
    if (body !== undefined) count(result.bodies, body.split(' ').slice(0, 2).join(' ').trim());
    result.total++;
  }
}

await withProgress(opt['progress-file'], () => result.total, Promise.all(Array.from({ length: concurrency }, loop)));
agent.destroy();
result.elapsedMs = Date.now() - bounds.started;
process.stdout.write(JSON.stringify(result) + '\n');
