/**
 * The load client of the fleet test, run inside the load balancer's sandbox against the
 * balancer on loopback. Bounded three ways: --requests, --seconds, and a request rate
 * (--rate per second over all loops), so that three hosts, a balancer and the client share
 * two cores without starving the health checks. Half of the loops keep their connection
 * alive, the other half open a new connection per request. Stops early once --stop-file
 * exists. Prints one JSON summary: failures by cause with timestamps, and the requests each
 * host answered (the fixture app's body names its version, which the test makes per host).
 *
 *   node fleet-load.js --url http://127.0.0.1:8080 --rate 200 --concurrency 8
 *                      --requests N --seconds S [--stop-file F] [--progress-file F]
 */
import { existsSync, writeFileSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    rate: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    requests: { type: 'string' },
    seconds: { type: 'string' },
    'stop-file': { type: 'string' },
    'progress-file': { type: 'string' },
  },
});

const maxRequests = Number(opt.requests);
const maxSeconds = Number(opt.seconds);
if (!(maxRequests > 0) || !(maxSeconds > 0)) throw new Error('--requests and --seconds are required (the run must be bounded)');
const target = new URL(opt.url ?? '');
if (target.hostname !== '127.0.0.1') throw new Error('the balancer on loopback only');
const concurrency = Math.max(2, Number(opt.concurrency));
const rate = Number(opt.rate);
/** Each loop waits this long between the starts of two of its requests. */
const periodMs = (1000 * concurrency) / rate;

const keepAlive = new Agent({ keepAlive: true, maxSockets: concurrency });
const fresh = new Agent({ keepAlive: false });
const started = Date.now();
const deadline = started + maxSeconds * 1000;
let issued = 0;
let stopped = false;
const result = {
  total: 0,
  ok: 0,
  failed: 0,
  keepAlive: 0,
  newConnection: 0,
  errors: {} as Record<string, number>,
  statuses: {} as Record<string, number>,
  hosts: {} as Record<string, number>,
  /** Failures: ms since the start, cause, detail (the first 50). */
  failures: [] as Array<{ atMs: number; cause: string; detail: string }>,
  elapsedMs: 0,
};

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

function fail(cause: string, detail: string): void {
  result.failed++;
  count(result.errors, cause);
  if (result.failures.length < 50) result.failures.push({ atMs: Date.now() - started, cause, detail });
}

function once(n: number, reuse: boolean): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      {
        agent: reuse ? keepAlive : fresh,
        host: target.hostname,
        port: target.port,
        path: `/?rid=fleet-${n}`,
        headers: reuse ? {} : { connection: 'close' },
        timeout: 20_000,
      },
      (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          count(result.statuses, String(res.statusCode));
          if (res.statusCode === 200) {
            result.ok++;
            // "hello h2.v1 1234": the host is the version's prefix.
            count(result.hosts, (body.split(' ')[1] ?? '?').split('.')[0]!);
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
    req.on('timeout', () => req.destroy(Object.assign(new Error('no response in 20 s'), { code: 'TIMEOUT' })));
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
  else if (opt['stop-file'] && existsSync(opt['stop-file'])) stopped = true;
  return stopped;
}

async function loop(i: number): Promise<void> {
  const reuse = i % 2 === 0;
  // Spread the loops' starts over one period.
  await new Promise((r) => setTimeout(r, (periodMs * i) / concurrency));
  while (!shouldStop()) {
    const t0 = Date.now();
    const n = issued++;
    await once(n, reuse);
    result.total++;
    if (reuse) result.keepAlive++;
    else result.newConnection++;
    const wait = periodMs - (Date.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, deadline - Date.now()))));
  }
}

const progress = opt['progress-file']
  ? setInterval(() => writeFileSync(opt['progress-file']!, String(result.total)), 100)
  : undefined;

await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
if (progress) clearInterval(progress);
if (opt['progress-file']) writeFileSync(opt['progress-file'], String(result.total));
keepAlive.destroy();
fresh.destroy();
result.elapsedMs = Date.now() - started;
process.stdout.write(JSON.stringify(result) + '\n');
