/**
 * What the end-to-end load clients (load.ts and fleet-load.ts) share: the bounds every run
 * must have, one request and its outcome, the tally both print, and the progress file.
 * Both run as standalone scripts inside a sandbox; this module only declares.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:http';

/** The summary both clients print; each adds fields of its own. */
export interface Tally {
  total: number;
  ok: number;
  failed: number;
  /** Failures by cause: a connection error code, TIMEOUT, or `HTTP <status>`. */
  errors: Record<string, number>;
  statuses: Record<string, number>;
  elapsedMs: number;
}

export function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/** How one request ended: answered (any status) or failed before its response was whole. */
export type Outcome = { status: number; body: string } | { cause: string; detail: string };

/** One request; never rejects. */
export function once(options: RequestOptions, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request({ ...options, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ cause: err.code ?? err.message, detail: `response: ${err.message}` }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no response in ${timeoutMs / 1000} s`), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ cause: err.code ?? err.message, detail: err.message }));
    req.end();
  });
}

/**
 * Counts one outcome in `tally` (`fail` records a failure's sample as the client keeps
 * them). Returns the body of a 200, and undefined for anything else.
 */
export function settle(tally: Tally, o: Outcome, fail: (cause: string, detail: string) => void): string | undefined {
  if ('cause' in o) {
    fail(o.cause, o.detail);
    return undefined;
  }
  count(tally.statuses, String(o.status));
  if (o.status === 200) {
    tally.ok++;
    return o.body;
  }
  fail(`HTTP ${o.status}`, o.body.slice(0, 200));
  return undefined;
}

/**
 * The bounds of a run: --requests and --seconds are both required, and the run stops at
 * whichever comes first, or once the stop file exists (looked for every `stopEvery` requests).
 */
export class Bounds {
  readonly started = Date.now();
  readonly deadline: number;
  private readonly maxRequests: number;
  private issued = 0;
  private stopped = false;

  constructor(requests: string | undefined, seconds: string | undefined, private readonly stopFile: string | undefined, private readonly stopEvery = 1) {
    this.maxRequests = Number(requests);
    const maxSeconds = Number(seconds);
    if (!(this.maxRequests > 0) || !(maxSeconds > 0)) throw new Error('--requests and --seconds are required (the run must be bounded)');
    this.deadline = this.started + maxSeconds * 1000;
  }

  /** The next request's number, or undefined once the run must stop. */
  next(): number | undefined {
    if (!this.stopped) {
      if (this.issued >= this.maxRequests || Date.now() >= this.deadline) this.stopped = true;
      else if (this.stopFile && this.issued % this.stopEvery === 0 && existsSync(this.stopFile)) this.stopped = true;
    }
    return this.stopped ? undefined : this.issued++;
  }
}

/** Runs `work`, writing `total()` to `file` (when given) every 100 ms and once at the end. */
export async function withProgress(file: string | undefined, total: () => number, work: Promise<unknown>): Promise<void> {
  const timer = file ? setInterval(() => writeFileSync(file, String(total())), 100) : undefined;
  await work;
  if (timer) clearInterval(timer);
  if (file) writeFileSync(file, String(total()));
}
