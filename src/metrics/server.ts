/**
 * The master's metrics listener: GET /metrics (Prometheus text 0.0.4), /livez and /readyz.
 * Every answer comes from what the master already holds; no request waits on a worker.
 */
import { unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire, Module } from 'node:module';
import { CorralError } from '../errors.js';
import { parseBind, type BindSpec } from '../listeners/bind-spec.js';
import { removeStaleSocket } from '../listeners/stale-socket.js';
import { HEAD_DEADLINE_MS, HeldConnections } from './held-connections.js';
import type { MasterMetrics } from './master-metrics.js';
import { CONTENT_TYPE } from './text.js';

/**
 * Set on every /livez and /readyz answer, to `live` or `ready`: `corral health` requires it,
 * so a 200 from anything else (the app's own /livez, on the app's port) is not taken for
 * the master's. A header rather than the body, which stays the documented JSON.
 */
export const HEALTH_HEADER = 'corral-health';

/** The metrics-bind setting as an address, or undefined when off. */
export function metricsAddress(setting: string | undefined): BindSpec | undefined {
  if (setting === undefined || setting === 'off') return undefined;
  return parseBind(setting);
}

interface DefaultMetrics {
  metrics(): Promise<string>;
}

/**
 * prom-client's CPU collector requires @opentelemetry/api, for exemplars only (which the
 * master never enables); loading it costs the master about 5 MiB of RSS. A placeholder in
 * the require cache (require.cache is writable by design) stands in for it.
 */
function skipOpenTelemetry(): void {
  try {
    const req = createRequire(createRequire(import.meta.url).resolve('prom-client'));
    const path = req.resolve('@opentelemetry/api');
    if (req.cache[path]) return;
    const stub = new Module(path);
    stub.filename = path;
    stub.loaded = true;
    req.cache[path] = stub;
  } catch {
    // not installed where expected: prom-client loads what it finds
  }
}

/** The master's process metrics (prom-client's default collectors, in a registry of their own). */
async function processMetrics(): Promise<DefaultMetrics> {
  skipOpenTelemetry();
  const client = await import('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  return registry;
}

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    readonly address: BindSpec,
    private readonly cleanup: () => void,
  ) {}

  static async listen(address: BindSpec, metrics: MasterMetrics): Promise<MetricsServer> {
    const proc = await processMetrics();
    // Node's own timeouts stay as a backstop; HeldConnections enforces the deadlines that matter.
    const held = new HeldConnections();
    const server = createServer({ requestTimeout: 10_000, headersTimeout: HEAD_DEADLINE_MS, keepAliveTimeout: HEAD_DEADLINE_MS }, (req, res) => {
      held.requested(req.socket);
      res.once('close', () => held.answered(req.socket));
      void answer(req, res, metrics, proc);
    });
    server.on('connection', (s) => held.accepted(s));
    let cleanup = () => {};
    if (address.kind === 'unix') {
      await removeStaleSocket(address.path, `metrics-bind ${address.text}`);
      cleanup = () => {
        try {
          unlinkSync(address.path);
        } catch {
          // gone
        }
      };
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
        reject(new CorralError(err.code === 'EADDRINUSE' ? 'E_BIND_IN_USE' : 'E_BIND_FAILED', `cannot bind metrics-bind ${address.text}: ${why}`));
      });
      if (address.kind === 'unix') server.listen(address.path, resolve);
      else if (address.kind === 'tcp') server.listen(address.port, address.host, resolve);
      else reject(new CorralError('E_CONFIG_VALUE', `metrics-bind ${address.text}: must be HOST:PORT or unix:/path`));
    });
    // Never what keeps the master alive: it exits when its workers are gone.
    server.unref();
    return new MetricsServer(server, address, cleanup);
  }

  /** The TCP port bound (useful with port 0). */
  get port(): number | undefined {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
    this.cleanup();
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

async function answer(req: IncomingMessage, res: ServerResponse, metrics: MasterMetrics, proc: DefaultMetrics): Promise<void> {
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain', 'method not allowed\n');
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      const own = metrics.text() + metrics.appText();
      return send(res, 200, CONTENT_TYPE, own + (await proc.metrics()));
    }
    if (path === '/livez' || path === '/readyz') {
      const a = path === '/livez' ? metrics.live() : metrics.ready();
      res.setHeader(HEALTH_HEADER, path === '/livez' ? 'live' : 'ready');
      return send(res, a.ok ? 200 : 503, 'application/json', JSON.stringify(a.body) + '\n');
    }
    send(res, 404, 'text/plain', 'not found: try /metrics, /livez or /readyz\n');
  } catch (err) {
    send(res, 500, 'text/plain', `error: ${(err as Error).message}\n`);
  }
}
