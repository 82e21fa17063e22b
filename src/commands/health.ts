import { request } from 'node:http';
import { resolveConfig } from '../config/resolve.js';
import { CorralError } from '../errors.js';
import { metricsAddress } from '../metrics/server.js';

export interface HealthOptions {
  ready?: boolean;
  timeout?: string;
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

/** `corral health [--ready] [ADDRESS]`: exit 0 when /livez (or /readyz) answers 200. */
export async function healthCommand(given: string | undefined, opts: HealthOptions): Promise<void> {
  const timeout = Number(opts.timeout ?? '5');
  if (!Number.isFinite(timeout) || timeout <= 0) throw new CorralError('E_UNHEALTHY', `--timeout ${JSON.stringify(opts.timeout)} is not valid: must be a number of seconds > 0`);
  const text = await address(given, opts);
  let spec;
  try {
    spec = metricsAddress(text);
  } catch (err) {
    throw new CorralError('E_UNHEALTHY', `${JSON.stringify(text)} is not an address: ${(err as Error).message}`);
  }
  if (!spec) throw new CorralError('E_UNHEALTHY', 'metrics-bind is off: there is no health endpoint to ask');
  const path = opts.ready ? '/readyz' : '/livez';
  const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ ...target(spec), path, method: 'GET', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on('error', reject);
    });
    req.setTimeout(timeout * 1000, () => req.destroy(new Error(`no answer within ${timeout} s`)));
    req.on('error', reject);
    req.end();
  }).catch((err: Error) => {
    throw new CorralError('E_UNHEALTHY', `${spec.text}${path}: ${err.message}`);
  });
  if (reply.status !== 200) throw new CorralError('E_UNHEALTHY', `${spec.text}${path} answered ${reply.status}: ${reply.body}`);
  process.stdout.write(`${reply.body}\n`);
}
