/**
 * Warm-up requests (warmup-requests): a new worker asks its own servers for a few paths
 * after the app's init and before it listens on the shared sockets, so the app's code is
 * loaded, compiled and its caches filled before the first client arrives. The requests go
 * through the server the app was given, over a real TCP connection from a private loopback
 * listener of this process: the app, its 'request' listeners and corral's request path see
 * them as any other request, marked only by the `corral-warmup: 1` header.
 */
import { EventEmitter } from 'node:events';
import { Agent as HttpAgent, request as httpRequest, type Server, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';

/** The header every warm-up request carries, so an app can tell them from clients' requests. */
export const WARMUP_HEADER = 'corral-warmup';

export interface WarmupPlan {
  paths: string[];
  /** Times each path is requested. */
  count: number;
  /** How long the whole warm-up may take (ms). */
  budgetMs: number;
}

/** A warm-up request that failed: the worker's boot fails with it (E_WARMUP). */
export class WarmupError extends Error {}

/**
 * How long a worker's warm-up may take: what is left of boot-timeout since the process
 * started, less a margin (10 %, at most 1 s) so the worker reports which request failed before
 * the master would kill it for its boot-timeout.
 */
export function warmupBudgetMs(bootTimeoutMs: number, sinceStartMs: number): number {
  return Math.max(0, bootTimeoutMs - Math.min(1000, bootTimeoutMs / 10) - sinceStartMs);
}

/** Connections from `local` are handed to `server` as if it had accepted them itself. */
function localListener(server: Server): Promise<NetServer> {
  const local = createServer((socket) => {
    // EventEmitter's emit, not the server's own: this connection comes from this process and
    // carries no PROXY protocol header even when the listener the server stands for expects one.
    EventEmitter.prototype.emit.call(server, 'connection', socket);
  });
  return new Promise((resolve, reject) => {
    local.once('error', reject);
    local.listen(0, '127.0.0.1', () => resolve(local));
  });
}

function describe(res: IncomingMessage, path: string): string | undefined {
  const status = res.statusCode ?? 0;
  return status >= 200 && status < 400 ? undefined : `warm-up request GET ${path} answered ${status}`;
}

/**
 * Serves every warm-up request through `server`, one after the other on one kept
 * connection; resolves with how many were served, or rejects with a WarmupError at the first
 * that fails or when the budget runs out. `tls`: the server speaks TLS (its certificate is
 * not checked: the peer is this process).
 */
export async function warmUp(server: Server, tls: boolean, plan: WarmupPlan): Promise<number> {
  const local = await localListener(server);
  const port = (local.address() as AddressInfo).port;
  const agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  const request = tls ? httpsRequest : httpRequest;
  let timer: NodeJS.Timeout | undefined;
  let current = '';
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WarmupError(`warm-up request GET ${current} did not answer within the ${(plan.budgetMs / 1000).toFixed(1)} s boot-timeout left`)), plan.budgetMs);
  });
  const one = (path: string): Promise<void> => new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent, headers: { host: 'localhost', [WARMUP_HEADER]: '1', 'user-agent': 'corral-warmup' } }, (res) => {
      const problem = describe(res, path);
      res.resume();
      res.once('end', () => (problem ? reject(new WarmupError(problem)) : resolve()));
      res.once('error', (err) => reject(new WarmupError(`warm-up request GET ${path} failed: ${err.message}`)));
    });
    req.once('error', (err) => reject(new WarmupError(`warm-up request GET ${path} failed: ${err.message}`)));
    req.end();
  });
  let served = 0;
  try {
    for (const path of plan.paths) {
      current = path;
      for (let i = 0; i < plan.count; i++) {
        await Promise.race([one(path), expired]);
        served++;
      }
    }
    return served;
  } finally {
    clearTimeout(timer);
    expired.catch(() => {});
    agent.destroy();
    local.close();
  }
}

/** The server warm-up requests go through: the first whose listener is plain HTTP, else the first. */
export function warmupServer<S>(servers: S[], listeners: Array<{ tls?: boolean }>): { server: S; tls: boolean } | undefined {
  const i = Math.max(0, listeners.findIndex((l) => !l.tls));
  const server = servers[i];
  return server === undefined ? undefined : { server, tls: listeners[i]?.tls === true };
}
