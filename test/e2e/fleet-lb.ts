/**
 * The fleet's load balancers, each run as a plain process (not a service) inside the
 * balancer's sandbox with a configuration made from the shipped examples, adapted to the
 * fleet's addresses: HAProxy from examples/haproxy/haproxy.cfg (active health checks) and
 * nginx from examples/nginx/corral-fleet.conf (passive checks). Both listen on
 * 127.0.0.1:8080 of that sandbox and log to files in its shared directory.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { APP_PORT, httpStatus, METRICS_PORT, type Fleet, type Host } from './fleet-net.js';
import { REPO, waitFor, type RunningCommand } from './harness.js';

export const LB_URL = 'http://127.0.0.1:8080';

export interface LbLog {
  requests: number;
  statuses: Record<string, number>;
  /** Requests the balancer passed to a second server (or retried). */
  retried: number;
  bad: string[];
}

export interface Balancer {
  readonly kind: 'haproxy' | 'nginx';
  start(): Promise<void>;
  /** Until the balancer would send requests to `host` again (HAProxy: its check says UP). */
  waitServing(host: Host, timeoutMs?: number): Promise<void>;
  /** Requests logged since the last call. */
  takeLog(): LbLog;
  /** Servers the balancer took out (HAProxy's "is DOWN" events) since the last call. */
  takeDowns(): string[];
  stop(): Promise<void>;
}

/** Applies each replacement to an example's text; one that matches nothing means the example changed. */
export function replaceAll(text: string, pairs: Array<[string | RegExp, string]>): string {
  let out = text;
  for (const [from, to] of pairs) {
    const next = out.replaceAll(from, to);
    if (next === out) throw new Error(`the example no longer contains ${String(from)}: update the test`);
    out = next;
  }
  return out;
}

export class HAProxy implements Balancer {
  readonly kind = 'haproxy';
  private proc: RunningCommand | undefined;
  private readonly dir: string;
  private logOffset = 0;
  private eventOffset = 0;

  constructor(private readonly fleet: Fleet) {
    this.dir = fleet.lb.dir;
  }

  get logFile(): string {
    return join(this.dir, 'haproxy.log');
  }

  private get socket(): string {
    return join(this.dir, 'haproxy.sock');
  }

  private config(): string {
    const example = readFileSync(join(REPO, 'examples/haproxy/haproxy.cfg'), 'utf8');
    const pairs: Array<[string | RegExp, string]> = [
      ['/run/haproxy/admin.sock', this.socket],
      ['bind :80', `bind ${LB_URL.slice('http://'.length)}`],
      // In-flight requests on a host that went silent are retried after this long.
      ['timeout server 30s', 'timeout server 5s'],
      ...this.fleet.hosts.map((h, i): [string, string] => [`server hello${i + 1} 10.0.0.1${i + 1}:${APP_PORT}`, `server ${h.name} ${h.addr}:${APP_PORT}`]),
    ];
    return replaceAll(example, pairs);
  }

  async start(): Promise<void> {
    const cfg = join(this.dir, 'haproxy.cfg');
    await this.fleet.lb.sh(`cat > ${cfg} <<'EOF'\n${this.config()}EOF\nhaproxy -c -q -f ${cfg}`);
    this.proc = this.fleet.lb.spawn(['sh', '-c', `exec haproxy -db -f ${cfg} >> ${this.logFile} 2>&1`]);
    for (const h of this.fleet.hosts) await this.waitServing(h, 30_000);
    await waitFor('HAProxy serving', async () => (await httpStatus(this.fleet.lb, LB_URL)) === 200, { timeoutMs: 20_000 });
  }

  /** Server name -> status (UP, DOWN, MAINT, ...) from the stats socket. */
  async states(): Promise<Record<string, string>> {
    const csv = await new Promise<string>((resolve, reject) => {
      const s = connect(this.socket);
      let out = '';
      s.setTimeout(3000, () => s.destroy(new Error('no answer from the stats socket')));
      s.on('connect', () => s.end('show stat\n'));
      s.setEncoding('utf8').on('data', (d: string) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    const lines = csv.split('\n');
    const header = lines[0]!.replace(/^# /, '').split(',');
    const col = (name: string) => header.indexOf(name);
    const out: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const f = line.split(',');
      if (f[col('pxname')] === 'corral_hello' && /^h\d$/.test(f[col('svname')] ?? '')) out[f[col('svname')]!] = f[col('status')]!;
    }
    return out;
  }

  async waitServing(host: Host, timeoutMs = 30_000): Promise<void> {
    await waitFor(`HAProxy's check to find ${host.name} UP`, async () => (await this.states())[host.name] === 'UP', { timeoutMs, intervalMs: 100 });
  }

  private read(offset: number): { text: string; end: number } {
    let all = '';
    try {
      all = readFileSync(this.logFile, 'utf8');
    } catch {
      // not written yet
    }
    return { text: all.slice(offset), end: all.length };
  }

  takeLog(): LbLog {
    const { text, end } = this.read(this.logOffset);
    this.logOffset = end;
    const out: LbLog = { requests: 0, statuses: {}, retried: 0, bad: [] };
    for (const line of text.split('\n')) {
      // ... www corral_hello/h2 0/0/1/2/3 200 143 - - ---- 1/1/0/0/0 0/0 "GET /?rid=... HTTP/1.1"
      const m = / www corral_hello\/(\S+) \S+ (-?\d+) \S+ \S+ \S+ \S+ \d+\/\d+\/\d+\/\d+\/(\+?\d+) \d+\/\d+ "GET \/\?rid=fleet/.exec(line);
      if (!m) continue;
      out.requests++;
      out.statuses[m[2]!] = (out.statuses[m[2]!] ?? 0) + 1;
      if (m[3] !== '0') out.retried++;
      if (m[2] !== '200' && out.bad.length < 20) out.bad.push(line);
    }
    return out;
  }

  takeDowns(): string[] {
    const { text, end } = this.read(this.eventOffset);
    this.eventOffset = end;
    return [...text.matchAll(/Server corral_hello\/(h\d) is DOWN/g)].map((m) => m[1]!);
  }

  async stop(): Promise<void> {
    this.proc?.kill();
    await this.proc?.wait(10_000);
  }
}

export class Nginx implements Balancer {
  readonly kind = 'nginx';
  private proc: RunningCommand | undefined;
  private readonly dir: string;
  private logOffset = 0;

  constructor(private readonly fleet: Fleet) {
    this.dir = fleet.lb.dir;
  }

  private get accessLog(): string {
    return join(this.dir, 'nginx-access.log');
  }

  private site(): string {
    const example = readFileSync(join(REPO, 'examples/nginx/corral-fleet.conf'), 'utf8');
    return replaceAll(example, [
      ['listen 80;', `listen ${LB_URL.slice('http://'.length)};`],
      ['    listen [::]:80;\n', ''],
      ['server_name hello.example.com;', 'server_name _;'],
      // In-flight requests on a host that went silent go to the next one after this long.
      ['proxy_read_timeout 30s;', 'proxy_read_timeout 5s;'],
      ...this.fleet.hosts.map((h, i): [string, string] => [`server 10.0.0.1${i + 1}:${APP_PORT}`, `server ${h.addr}:${APP_PORT}`]),
    ]);
  }

  async start(): Promise<void> {
    const d = this.dir;
    const main = `worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/nginx-error.log warn;
events { worker_connections 1024; }
http {
    log_format fleet '$status "$request" us=$upstream_status ua=$upstream_addr';
    access_log ${this.accessLog} fleet;
    include ${d}/corral-fleet.conf;
}
`;
    await this.fleet.lb.sh(`
      cat > ${d}/corral-fleet.conf <<'EOF'\n${this.site()}EOF
      cat > ${d}/nginx.conf <<'EOF'\n${main}EOF
      nginx -q -t -c ${d}/nginx.conf
    `);
    this.proc = this.fleet.lb.spawn(['nginx', '-c', `${d}/nginx.conf`, '-g', 'daemon off;']);
    await waitFor('nginx serving', async () => (await httpStatus(this.fleet.lb, LB_URL)) === 200, { timeoutMs: 20_000 });
    this.takeLog();
  }

  /** nginx has no view of its own (passive checks): the host's own readiness, as the deploy script would ask it. */
  async waitServing(host: Host, timeoutMs = 30_000): Promise<void> {
    const url = `http://${host.addr}:${METRICS_PORT}/readyz`;
    await waitFor(`${host.name} ready (${url})`, async () => (await httpStatus(this.fleet.lb, url)) === 200, { timeoutMs, intervalMs: 100 });
  }

  takeLog(): LbLog {
    let all = '';
    try {
      all = readFileSync(this.accessLog, 'utf8');
    } catch {
      // not written yet
    }
    const text = all.slice(this.logOffset);
    this.logOffset = all.length;
    const out: LbLog = { requests: 0, statuses: {}, retried: 0, bad: [] };
    for (const line of text.split('\n')) {
      const m = /^(\d{3}) "GET \/\?rid=fleet\S* HTTP\/1\.1" us=(\S+(?:, \S+)*) ua=/.exec(line);
      if (!m) continue;
      out.requests++;
      out.statuses[m[1]!] = (out.statuses[m[1]!] ?? 0) + 1;
      if (m[2]!.includes(',')) out.retried++;
      if (m[1] !== '200' && out.bad.length < 20) out.bad.push(line);
    }
    return out;
  }

  takeDowns(): string[] {
    return [];
  }

  async stop(): Promise<void> {
    this.proc?.kill();
    await this.proc?.wait(10_000);
  }
}
