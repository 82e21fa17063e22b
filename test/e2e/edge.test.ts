/**
 * The edge, with real parts: corral installed by scripts/install (corral@web, socket
 * activation) behind the shipped nginx examples and the shipped HAProxy example, reached by
 * clients whose addresses are not loopback and who forge X-Forwarded-For and Forwarded.
 *   - nginx (TCP and unix upstreams): the access line's remote_addr is the client, peer_addr
 *     nginx; the forged address is never the client;
 *   - a client straight to corral's own port: logged with its own address, and the app
 *     sees none of the forwarding headers it sent (forwarded-headers = drop-untrusted);
 *   - HAProxy: `option forwardfor` to the plain listener, `send-proxy` and `send-proxy-v2`
 *     to a listener with proxy-protocol on, which systemd passes from a second socket unit
 *     (FileDescriptorName=proxied, as docs/proxies.md shows it): each logs the client's address;
 *   - that listener closes a connection without a header, and one from a peer outside
 *     proxy-protocol-from, unanswered, and counts them on /metrics.
 * The sandbox's network namespace has no address but loopback: the "public" address and
 * the clients' (192.0.2.0/24, TEST-NET-1) are added to lo. A dummy interface would do the
 * same, but the sandbox cannot load the dummy module (no CAP_SYS_MODULE); local traffic
 * goes over lo whatever device holds the address.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { cannotRun, installApp, REPO, useSandbox, waitFor, type Sandbox } from './harness.js';
import { replaceAll } from './fleet-lb.js';

const skip = cannotRun() ?? (existsSync('/usr/sbin/haproxy') ? undefined : 'needs haproxy (scripts/setup installs it)');

/** Where nginx, HAProxy and corral's own ports listen. */
const PUBLIC = '192.0.2.1';
/** Two clients, neither loopback nor trusted. */
const CLIENT = '192.0.2.10';
const CLIENT2 = '192.0.2.11';
const FORGED = '6.6.6.6';
/** corral@web: plain HTTP on every address, the PROXY protocol listener, the metrics listener. */
const APP_PORT = 8000;
const PP_PORT = 8001;
const METRICS_PORT = 9100;
const FRONT = { nginxTcp: 8081, nginxUnix: 8082, haproxy: 8090, haproxyV1: 8091, haproxyV2: 8092 } as const;
const ACCESS_LOG = '/var/log/corral/web/access.log';
const ERROR_LOG = '/var/log/corral/web/error.log';
const RAW_JS = join(REPO, 'dist/test/e2e/raw-exchange.js');

/**
 * The recipe of docs/proxies.md ("With scripts/install"), for the app "web": the body of the
 * fenced block whose first line names `file`, with the PROXY listener on PP_PORT.
 */
function documented(file: string): string {
  const doc = readFileSync(join(REPO, 'docs/proxies.md'), 'utf8');
  for (const m of doc.matchAll(/^```ini\n# (\S+)\n([\s\S]*?)^```$/gm)) {
    if (m[1] === file) return m[2]!.replaceAll('hello', 'web').replace(':8001', `:${PP_PORT}`);
  }
  throw new Error(`docs/proxies.md no longer shows ${file}: update the test`);
}

function example(path: string): string {
  return readFileSync(join(REPO, 'examples', path), 'utf8');
}

/** A site of examples/nginx/ for the app "web", listening on PUBLIC:port. */
function nginxSite(file: string, port: number, dir: string): string {
  return replaceAll(example(`nginx/${file}`), [
    [/hello/g, 'web'],
    ['listen 80;', `listen ${PUBLIC}:${port};`],
    ['    listen [::]:80;\n', ''],
    ['server_name web.example.com;', 'server_name _;'],
  ]).replaceAll('/var/log/nginx/web.access.log', join(dir, 'nginx-access.log'));
}

async function startNginx(sb: Sandbox): Promise<void> {
  const d = sb.dir;
  writeFileSync(join(d, 'tcp.conf'), nginxSite('corral-tcp.conf', FRONT.nginxTcp, d));
  writeFileSync(join(d, 'unix.conf'), nginxSite('corral-unix.conf', FRONT.nginxUnix, d));
  // www-data: the unix socket is 0660 root:www-data (scripts/install).
  writeFileSync(join(d, 'nginx.conf'), `user www-data;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/nginx-error.log warn;
events { worker_connections 256; }
http {
    include ${d}/unix.conf;
    access_log ${d}/nginx-access.log corral_upstream;
    include ${d}/tcp.conf;
}
`);
  await sb.sh(`
    install -d /var/log/nginx
    install -D -m 0644 ${REPO}/examples/nginx/corral-proxy.conf /etc/nginx/snippets/corral-proxy.conf
    nginx -q -t -c ${d}/nginx.conf
    systemd-run --quiet --unit=e2e-nginx nginx -c ${d}/nginx.conf -g 'daemon off;'
  `);
}

/**
 * examples/haproxy/haproxy.cfg for one server, corral@web on this host: its backend as
 * shipped (option forwardfor) to the plain listener, and two copies of it to the PROXY
 * listener with the shipped commented-out `send-proxy-v2` line in force, one of them
 * turned into `send-proxy` (version 1). Checks go to /readyz on the metrics port, plain.
 */
function haproxyConfig(dir: string): string {
  const cfg = replaceAll(example('haproxy/haproxy.cfg'), [
    ['/run/haproxy/admin.sock', join(dir, 'haproxy.sock')],
    ['bind :80', `bind ${PUBLIC}:${FRONT.haproxy}`],
    ['server hello1 10.0.0.11:8000', `server web 127.0.0.1:${APP_PORT}`],
    ['    server hello2 10.0.0.12:8000\n', ''],
    ['    server hello3 10.0.0.13:8000\n', ''],
  ]);
  const backend = cfg.slice(cfg.indexOf('\nbackend corral_hello\n') + 1);
  const plain = /^ +default-server check port .*$/m.exec(backend)?.[0];
  const proxied = /^ +# (default-server send-proxy-v2 .*)$/m.exec(backend)?.[1];
  if (!plain || !proxied) throw new Error('the HAProxy example no longer has its default-server lines: update the test');
  const variant = (name: string, line: string) => replaceAll(backend, [
    [/^backend corral_hello$/gm, `backend ${name}`],
    [plain, `    ${line}`],
    [`server web 127.0.0.1:${APP_PORT}`, `server web 127.0.0.1:${PP_PORT}`],
  ]);
  const frontend = (name: string, port: number, to: string) => `\nfrontend ${name}\n    bind ${PUBLIC}:${port}\n    default_backend ${to}\n`;
  return `${cfg}${frontend('www_v2', FRONT.haproxyV2, 'corral_v2')}${frontend('www_v1', FRONT.haproxyV1, 'corral_v1')}
${variant('corral_v2', proxied)}
${variant('corral_v1', proxied.replace('send-proxy-v2', 'send-proxy'))}`;
}

async function startHaproxy(sb: Sandbox): Promise<string> {
  const file = join(sb.dir, 'haproxy.cfg');
  const cfg = haproxyConfig(sb.dir);
  writeFileSync(file, cfg);
  await sb.sh(`
    haproxy -c -f ${file}
    systemd-run --quiet --unit=e2e-haproxy haproxy -db -f ${file}
  `);
  return cfg;
}

interface Reply {
  status: number;
  /** What the app saw (GET /headers of the fixture app). */
  seen: { headers: Record<string, string>; remoteAddress: string };
}

/** One GET /headers from `from` with X-Request-Id: id and these headers, with curl in the sandbox. */
async function send(sb: Sandbox, from: string, url: string, id: string, headers: Record<string, string> = {}): Promise<Reply> {
  const args = ['curl', '-sS', '--max-time', '10', '--interface', from, '-H', `X-Request-Id: ${id}`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push('-o', '-', '-w', '\n%{http_code}', `${url}/headers`);
  const out = await sb.ok(args, { timeoutMs: 20_000 });
  const i = out.lastIndexOf('\n');
  const status = Number(out.slice(i + 1));
  assert.equal(status, 200, `${id}: ${out}`);
  return { status, seen: JSON.parse(out.slice(0, i)) as Reply['seen'] };
}

type AccessLine = Record<string, unknown>;

/** The access lines of these request ids, once all of them are written. */
async function accessLines(sb: Sandbox, ids: string[]): Promise<Record<string, AccessLine>> {
  return waitFor(`access lines of ${ids.join(', ')}`, async () => {
    const byId: Record<string, AccessLine> = {};
    for (const line of (await sb.ok(['cat', ACCESS_LOG])).split('\n')) {
      if (!line.startsWith('{')) continue;
      const rec = JSON.parse(line) as AccessLine;
      if (ids.includes(String(rec.request_id))) byId[String(rec.request_id)] = rec;
    }
    return ids.every((id) => id in byId) ? byId : undefined;
  }, { timeoutMs: 15_000, intervalMs: 200 });
}

/** A raw exchange from `from` (raw-exchange.ts in the sandbox): what came back before the close. */
async function rawExchange(sb: Sandbox, from: string, host: string, port: number, bytes: string): Promise<{ got: string; closed: boolean; error?: string }> {
  const out = await sb.ok(['node', RAW_JS, from, host, String(port), Buffer.from(bytes, 'latin1').toString('base64'), '5000'], { timeoutMs: 20_000 });
  return JSON.parse(out) as { got: string; closed: boolean; error?: string };
}

async function metric(sb: Sandbox, reason: string): Promise<number | undefined> {
  const r = await sb.exec(['curl', '-sS', '--max-time', '5', `http://127.0.0.1:${METRICS_PORT}/metrics`]);
  const m = new RegExp(`^corral_proxy_protocol_rejected_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

const FORWARDING = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-proto'];

describe('the edge: nginx and HAProxy in front, forged forwarding headers, the PROXY protocol', { skip, timeout: 240_000 }, () => {
  const sandbox = useSandbox(import.meta.url);

  before(async () => {
    const sb = sandbox();
    await sb.sh(`for a in ${PUBLIC} ${CLIENT} ${CLIENT2}; do ip addr add "$a/32" dev lo; done`);
    await installApp(sb, {
      name: 'web', port: APP_PORT, workers: 2,
      env: { CORRAL_PROXY_PROTOCOL: 'systemd:proxied' },
      extraArgs: ['--host', '0.0.0.0', '--socket', 'unix:/run/corral/web.sock', '--metrics-port', String(METRICS_PORT), '--logs', 'files', '--no-start'],
    });
    writeFileSync(join(sb.dir, 'proxied.socket'), documented('/etc/systemd/system/corral-hello-proxied.socket'));
    writeFileSync(join(sb.dir, 'proxied.conf'), documented('/etc/systemd/system/corral@hello.service.d/20-proxied.conf'));
    await sb.sh(`
      install -m 0644 ${sb.dir}/proxied.socket /etc/systemd/system/corral-web-proxied.socket
      install -m 0644 ${sb.dir}/proxied.conf /etc/systemd/system/corral@web.service.d/20-proxied.conf
      systemctl daemon-reload
      systemctl enable --quiet --now corral@web.socket corral-web-proxied.socket
      systemctl start corral@web.service
    `, { timeoutMs: 90_000 });
    await startNginx(sb);
    await startHaproxy(sb);
    const fronts = Object.entries(FRONT);
    for (const [name, port] of fronts) {
      await waitFor(`${name} serving on ${PUBLIC}:${port}`, async () => {
        const r = await sb.exec(['curl', '-s', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${PUBLIC}:${port}/`]);
        return r.stdout === '200';
      }, { timeoutMs: 30_000, intervalMs: 200 });
    }
  }, { timeout: 150_000 });

  test('behind the shipped nginx (TCP and unix upstreams): remote_addr is the client, peer_addr nginx, never the forged address', async (t) => {
    const sb = sandbox();
    const fronts = [
      { name: 'tcp', url: `http://${PUBLIC}:${FRONT.nginxTcp}`, peer: '127.0.0.1' },
      // A unix-socket peer has no address: no peer_addr.
      { name: 'unix', url: `http://${PUBLIC}:${FRONT.nginxUnix}`, peer: undefined },
    ];
    const replies: Record<string, Reply> = {};
    for (const f of fronts) {
      replies[`ngx-${f.name}-xff`] = await send(sb, CLIENT, f.url, `ngx-${f.name}-xff`, { 'X-Forwarded-For': FORGED });
      replies[`ngx-${f.name}-fwd`] = await send(sb, CLIENT, f.url, `ngx-${f.name}-fwd`, { Forwarded: `for=${FORGED}` });
    }
    const lines = await accessLines(sb, Object.keys(replies));
    for (const f of fronts) {
      const xff = lines[`ngx-${f.name}-xff`]!;
      const fwd = lines[`ngx-${f.name}-fwd`]!;
      t.diagnostic(`${f.name}: ${JSON.stringify(xff)}`);
      t.diagnostic(`${f.name}: ${JSON.stringify(fwd)}`);
      for (const rec of [xff, fwd]) {
        assert.equal(rec.remote_addr, CLIENT, JSON.stringify(rec));
        assert.equal(rec.peer_addr, f.peer, JSON.stringify(rec));
      }
      // nginx appended the address it saw to the client's own header: the log keeps both.
      assert.equal(xff.forwarded_for, `${FORGED}, ${CLIENT}`);
      assert.equal(fwd.forwarded_for, CLIENT);
      // From a trusted proxy the headers reach the app as nginx sent them.
      const seen = replies[`ngx-${f.name}-xff`]!.seen;
      assert.equal(seen.headers['x-forwarded-for'], `${FORGED}, ${CLIENT}`);
      assert.equal(seen.headers['x-real-ip'], CLIENT);
    }
  });

  test('a client straight to corral forging the headers: logged with its own address, the app sees none of them', async (t) => {
    const sb = sandbox();
    const url = `http://${PUBLIC}:${APP_PORT}`;
    const all = await send(sb, CLIENT, url, 'direct-all', {
      'X-Forwarded-For': FORGED, Forwarded: `for=${FORGED}`, 'X-Real-IP': FORGED, 'X-Forwarded-Proto': 'https',
    });
    const fwd = await send(sb, CLIENT, url, 'direct-fwd', { Forwarded: `for=${FORGED}` });
    const lines = await accessLines(sb, ['direct-all', 'direct-fwd']);
    t.diagnostic(JSON.stringify(lines));
    for (const rec of Object.values(lines)) {
      assert.equal(rec.remote_addr, CLIENT, JSON.stringify(rec));
      assert.ok(!('peer_addr' in rec), JSON.stringify(rec));
    }
    // The log keeps what was claimed, for an investigation.
    assert.equal(lines['direct-all']!.forwarded_for, FORGED);
    for (const seen of [all.seen, fwd.seen]) {
      assert.equal(seen.remoteAddress, CLIENT);
      for (const h of FORWARDING) assert.ok(!(h in seen.headers), `the app saw ${h}: ${JSON.stringify(seen.headers)}`);
    }
  });

  test('behind the shipped HAProxy: option forwardfor, send-proxy and send-proxy-v2 all log the client, never the forged address', async (t) => {
    const sb = sandbox();
    const forged = { 'X-Forwarded-For': FORGED, Forwarded: `for=${FORGED}` };
    const xff = await send(sb, CLIENT, `http://${PUBLIC}:${FRONT.haproxy}`, 'hap-xff', forged);
    // Two clients in turn over each PROXY backend: HAProxy keeps server connections
    // alive, and a connection must never carry one client's address for the other's request.
    const order = [CLIENT, CLIENT2, CLIENT, CLIENT2];
    const proxied: Array<{ id: string; from: string; reply: Reply }> = [];
    for (const [v, port] of [['v1', FRONT.haproxyV1], ['v2', FRONT.haproxyV2]] as const) {
      for (const [i, from] of order.entries()) {
        const id = `hap-${v}-${i}`;
        proxied.push({ id, from, reply: await send(sb, from, `http://${PUBLIC}:${port}`, id, forged) });
      }
    }
    const lines = await accessLines(sb, ['hap-xff', ...proxied.map((p) => p.id)]);
    const x = lines['hap-xff']!;
    t.diagnostic(`option forwardfor: ${JSON.stringify(x)}`);
    assert.equal(x.remote_addr, CLIENT);
    assert.equal(x.peer_addr, '127.0.0.1');
    assert.equal(x.forwarded_for, `${FORGED}, ${CLIENT}`, 'HAProxy appended the client to its own header');
    // The shipped `http-request del-header Forwarded`.
    assert.ok(!('forwarded' in xff.seen.headers), JSON.stringify(xff.seen.headers));
    for (const { id, from, reply } of proxied) {
      const rec = lines[id]!;
      t.diagnostic(`${id} from ${from}: ${JSON.stringify(rec)}; the app saw ${JSON.stringify(reply.seen)}`);
      assert.equal(rec.remote_addr, from, `${id}: ${JSON.stringify(rec)}`);
      // The balancer is the socket's peer; HAProxy's X-Forwarded-For is judged by the
      // header's source (docs/proxies.md), an untrusted client, so the app never sees it.
      assert.equal(rec.peer_addr, '127.0.0.1', `${id}: ${JSON.stringify(rec)}`);
      for (const h of FORWARDING) assert.ok(!(h in reply.seen.headers), `${id}: the app saw ${h}`);
      // The header is corral's to read: the app's socket is still the balancer's.
      assert.equal(reply.seen.remoteAddress, '127.0.0.1');
    }
  });

  test('the PROXY listener closes a connection without a header, and one from a peer outside proxy-protocol-from, unanswered; both counted', async (t) => {
    const sb = sandbox();
    const initial = { invalid: await metric(sb, 'invalid'), notAllowed: await metric(sb, 'peer_not_allowed') };
    assert.deepEqual(initial, { invalid: 0, notAllowed: 0 }, 'nothing was refused before');
    const request = (id: string) => `GET /headers HTTP/1.1\r\nHost: web\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`;
    // Plain HTTP from loopback (a peer that may send a header, but sent none).
    const bare = await rawExchange(sb, '127.0.0.1', '127.0.0.1', PP_PORT, request('pp-bare'));
    // A well-formed header naming the forged address, from a client that may not send one.
    const forged = await rawExchange(sb, CLIENT, PUBLIC, PP_PORT, `PROXY TCP4 ${FORGED} ${PUBLIC} 40000 ${PP_PORT}\r\n${request('pp-forged')}`);
    t.diagnostic(`without a header: ${JSON.stringify(bare)}; from ${CLIENT}: ${JSON.stringify(forged)}`);
    for (const r of [bare, forged]) {
      assert.equal(r.got, '', 'closed without an answer');
      assert.ok(r.closed, 'closed by corral, not by the client timing out');
    }
    const counts = await waitFor('the refusals on /metrics', async () => {
      const now = { invalid: await metric(sb, 'invalid'), notAllowed: await metric(sb, 'peer_not_allowed') };
      return now.invalid === 1 && now.notAllowed === 1 ? now : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    t.diagnostic(`corral_proxy_protocol_rejected_total: ${JSON.stringify(counts)}`);
    // The listener is the socket systemd passed from the second socket unit.
    const errors = await sb.ok(['cat', ERROR_LOG]);
    const closed = errors.split('\n').filter((l) => l.includes('PROXY protocol: closed'));
    t.diagnostic(closed.join('\n'));
    assert.match(closed.join('\n'), /PROXY protocol: closed a connection on systemd:proxied \(fd \d+\) from (127\.0\.0\.1|192\.0\.2\.10)/);
    const access = await sb.ok(['cat', ACCESS_LOG]);
    assert.ok(!access.includes('"request_id":"pp-'), 'no refused request reached the app');
  });
});
