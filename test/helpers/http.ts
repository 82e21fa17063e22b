import { Agent, request } from 'node:http';

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface RequestOptions {
  port?: number;
  socketPath?: string;
  path?: string;
  method?: string;
  agent?: Agent | false;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

/** A request the server has in hand: its response headers arrived; `done` settles with the whole reply. */
export interface Held {
  status: number;
  done: Promise<Reply>;
}

/**
 * Sends a request and resolves once its response headers arrive, which (with a route that
 * flushes them first, such as hello.mjs's /slow?flush=1) proves a worker is handling it: a
 * test can then signal the server knowing the request is in flight, not still queued.
 */
export function held(opts: RequestOptions): Promise<Held> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1', port: opts.port, socketPath: opts.socketPath, path: opts.path ?? '/',
        method: opts.method ?? 'GET', agent: opts.agent ?? false, headers: opts.headers,
      },
      (res) => {
        const done = new Promise<Reply>((ok, fail) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => ok({ status: res.statusCode ?? 0, body, headers: res.headers }));
          res.on('error', fail);
          req.on('error', fail);
        });
        done.catch(() => {}); // handled by whoever awaits it; never an unhandled rejection
        resolve({ status: res.statusCode ?? 0, done });
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** One HTTP request to loopback (or a unix socket). */
export async function get(opts: RequestOptions): Promise<Reply> {
  return (await held(opts)).done;
}

/** Polls until the server answers 200 (or the deadline passes). */
export async function waitHttp(port: number, deadlineMs = 15_000, path = '/'): Promise<Reply> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const r = await get({ port, path, timeoutMs: 2000 });
      if (r.status === 200) return r;
      last = new Error(`status ${r.status}`);
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no 200 from port ${port} within ${deadlineMs} ms: ${String(last)}`);
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  errors: string[];
  statuses: Record<number, number>;
  bodies: string[];
  /** With idPrefix: the request ids that were answered with a 2xx. */
  okIds: string[];
}

export interface LoadOptions {
  port: number;
  total: number;
  concurrency: number;
  keepAlive: boolean;
  path?: string;
  /** Stop early after this long (a safety bound). */
  maxMs?: number;
  /** Keep every response body (for checks such as which code served). */
  keepBodies?: boolean;
  /** Sends X-Request-Id: prefix-N on request N and records the ids that got a 2xx. */
  idPrefix?: string;
}

/**
 * A bounded load: `total` requests from `concurrency` loops, over keep-alive connections or
 * a new connection per request. Every request either succeeds (2xx) or is counted as failed.
 */
export async function load(opts: LoadOptions): Promise<LoadResult> {
  const agent = opts.keepAlive ? new Agent({ keepAlive: true, maxSockets: opts.concurrency }) : false;
  const result: LoadResult = { sent: 0, ok: 0, failed: 0, errors: [], statuses: {}, bodies: [], okIds: [] };
  const deadline = Date.now() + (opts.maxMs ?? 60_000);
  const headers: Record<string, string> = opts.keepAlive ? {} : { connection: 'close' };
  const loop = async () => {
    while (result.sent < opts.total && Date.now() < deadline) {
      const n = result.sent++;
      const id = opts.idPrefix ? `${opts.idPrefix}-${n}` : undefined;
      try {
        const r = await get({ port: opts.port, path: opts.path, agent, headers: id ? { ...headers, 'x-request-id': id } : headers });
        result.statuses[r.status] = (result.statuses[r.status] ?? 0) + 1;
        if (r.status >= 200 && r.status < 300) {
          result.ok++;
          if (id) result.okIds.push(id);
        } else result.failed++;
        if (opts.keepBodies) result.bodies.push(r.body);
      } catch (err) {
        result.failed++;
        if (result.errors.length < 20) result.errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  if (agent) agent.destroy();
  return result;
}
