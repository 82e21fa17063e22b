import { request } from 'node:http';
import { resolveConfig } from '../config/resolve.js';
import { CorralError } from '../errors.js';
import { HEALTH_HEADER, metricsAddress } from '../metrics/server.js';

interface HealthOptions {
  ready?: boolean;
  /** Milliseconds, parsed by cli-args.ts. */
  timeout: number;
  config?: string;
}

/** A wildcard bind is reached through loopback. */
function target(spec: NonNullable<ReturnType<typeof metricsAddress>>): { host?: string; port?: number; socketPath?: string } {
  if (spec.kind === 'unix') return { socketPath: spec.path };
  if (spec.kind !== 'tcp') throw new CorralError('E_UNHEALTHY', `${spec.text}: the address must be HOST:PORT or unix:/path`);
  const host = spec.host === '0.0.0.0' ? '127.0.0.1' : spec.host === '::' ? '::1' : spec.host;
  return { host, port: spec.port };
}

async function address(given: string | undefined, opts: HealthOptions): Promise<string> {
  if (given) return given;
  const r = await resolveConfig({ cli: opts.config ? { config: opts.config } : {}, env: process.env, cwd: process.cwd() });
  const bind = r.config.metricsBind;
  if (!bind || bind === 'off') throw new CorralError('E_UNHEALTHY', 'no address to ask: pass ADDRESS, or set metrics-bind (CORRAL_METRICS_BIND)');
  return bind;
}

/** corral's answers are a line of JSON; more than this is not one of them. */
const MAX_BODY = 64 * 1024;

interface Reply {
  status: number;
  marker: unknown;
  body: string;
}

/** One GET, finished within timeoutMs all told (a peer that trickles bytes does not extend it). */
function get(spec: NonNullable<ReturnType<typeof metricsAddress>>, path: string, timeoutMs: number): Promise<Reply> {
  let timer: NodeJS.Timeout | undefined;
  const answered = new Promise<Reply>((resolve, reject) => {
    const req = request({ ...target(spec), path, method: 'GET', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.length > MAX_BODY) req.destroy(new Error(`an answer longer than ${MAX_BODY} bytes`));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, marker: res.headers[HEALTH_HEADER], body: body.trim() }));
      res.on('error', reject);
    });
    timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('error', reject);
    req.end();
  });
  return answered.finally(() => clearTimeout(timer));
}

/**
 * `corral health [--ready] [ADDRESS]`: exit 0 when /livez (or /readyz) answers 200 with
 * corral's health header naming that probe. Without the header the 200 is someone else's
 * (the app's own /livez, when ADDRESS is the app's port by mistake), which says nothing
 * about the master.
 */
export async function healthCommand(given: string | undefined, opts: HealthOptions): Promise<void> {
  const text = await address(given, opts);
  let spec;
  try {
    spec = metricsAddress(text);
  } catch (err) {
    throw new CorralError('E_UNHEALTHY', `${JSON.stringify(text)} is not an address: ${(err as Error).message}`);
  }
  if (!spec) throw new CorralError('E_UNHEALTHY', 'metrics-bind is off: there is no health endpoint to ask');
  const probe = opts.ready ? 'ready' : 'live';
  const path = `/${probe}z`;
  const reply = await get(spec, path, opts.timeout).catch((err: Error) => {
    throw new CorralError('E_UNHEALTHY', `${spec.text}${path}: ${err.message}`);
  });
  if (reply.marker !== probe) {
    throw new CorralError('E_UNHEALTHY', `${spec.text}${path} answered ${reply.status} without corral's ${HEALTH_HEADER}: ${probe} header: it is not corral's metrics listener (the app's own port?)`);
  }
  if (reply.status !== 200) throw new CorralError('E_UNHEALTHY', `${spec.text}${path} answered ${reply.status}: ${reply.body}`);
  process.stdout.write(`${reply.body}\n`);
}
