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
import { Agent } from 'node:http';
import { parseArgs } from 'node:util';
import { Bounds, count, once, settle, withProgress, type Tally } from './load-core.js';

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

const bounds = new Bounds(opt.requests, opt.seconds, opt['stop-file']);
const target = new URL(opt.url ?? '');
if (target.hostname !== '127.0.0.1') throw new Error('the balancer on loopback only');
const concurrency = Math.max(2, Number(opt.concurrency));
const rate = Number(opt.rate);
/** Each loop waits this long between the starts of two of its requests. */
const periodMs = (1000 * concurrency) / rate;

const keepAlive = new Agent({ keepAlive: true, maxSockets: concurrency });
const fresh = new Agent({ keepAlive: false });
/** What the fleet test reads (test/e2e/fleet.test.ts). */
export interface FleetLoad extends Tally {
  keepAlive: number;
  newConnection: number;
  hosts: Record<string, number>;
  /** Failures: ms since the start, cause, detail (the first 50). */
  failures: Array<{ atMs: number; cause: string; detail: string }>;
}
const result: FleetLoad = {
  total: 0,
  ok: 0,
  failed: 0,
  keepAlive: 0,
  newConnection: 0,
  errors: {},
  statuses: {},
  hosts: {},
  failures: [],
  elapsedMs: 0,
};

function fail(cause: string, detail: string): void {
  result.failed++;
  count(result.errors, cause);
  if (result.failures.length < 50) result.failures.push({ atMs: Date.now() - bounds.started, cause, detail });
}

async function loop(i: number): Promise<void> {
  const reuse = i % 2 === 0;
  // Spread the loops' starts over one period.
  await new Promise((r) => setTimeout(r, (periodMs * i) / concurrency));
  for (let n = bounds.next(); n !== undefined; n = bounds.next()) {
    const t0 = Date.now();
    const o = await once({
      agent: reuse ? keepAlive : fresh,
      host: target.hostname,
      port: target.port,
      path: `/?rid=fleet-${n}`,
      headers: reuse ? {} : { connection: 'close' },
    }, 20_000);
    const body = settle(result, o, fail);
    // "hello h2.v1 1234": the host is the version's prefix.
    if (body !== undefined) count(result.hosts, (body.split(' ')[1] ?? '?').split('.')[0]!);
    result.total++;
    if (reuse) result.keepAlive++;
    else result.newConnection++;
    const wait = periodMs - (Date.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, bounds.deadline - Date.now()))));
  }
}

await withProgress(opt['progress-file'], () => result.total, Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i))));
keepAlive.destroy();
fresh.destroy();
result.elapsedMs = Date.now() - bounds.started;
process.stdout.write(JSON.stringify(result) + '\n');
