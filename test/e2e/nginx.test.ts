/**
 * A real nginx in front of corral, configured from examples/nginx/: upstreams over TCP and
 * over the unix socket with keepalive, and over TCP without keepalive. Under load through
 * all three, ten HUP reloads and one max-requests recycling wave: nginx logs no 502 or 504.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import {
  cannotRun, get, installApp, progress, REPO, setVersion, sleep, startLoad, useSandbox, waitFor,
  type LoadResult, type Sandbox,
} from './harness.js';

const skip = cannotRun();
const EXAMPLES = join(REPO, 'examples/nginx');
/** nginx port -> what it proxies to. */
const FRONTS = {
  8081: 'tcp upstream, keepalive',
  8082: 'unix socket upstream, keepalive',
  8083: 'tcp upstream, no keepalive',
} as const;

/** Installs the examples (adapted: app "web", test ports) and runs nginx as a transient unit. */
async function startNginx(sb: Sandbox): Promise<void> {
  await sb.sh(`
    install -d /etc/nginx/snippets /etc/nginx/e2e /var/log/nginx
    cp ${EXAMPLES}/corral-proxy.conf /etc/nginx/snippets/corral-proxy.conf
    # Without keepalive: what nginx does by default (Connection: close per request).
    grep -v -e '^proxy_http_version' -e '^proxy_set_header Connection' ${EXAMPLES}/corral-proxy.conf \\
      > /etc/nginx/snippets/corral-proxy-close.conf
    adapt() { sed -e 's/hello/web/g' -e 's/listen 80;/listen 127.0.0.1:'"$1"';/' -e '/listen \\[::\\]:80;/d' \\
      -e 's/server_name web.example.com;/server_name _;/' -e 's#access_log /var/log/nginx/web.access.log#access_log /var/log/nginx/e2e-access.log#'; }
    adapt 8081 < ${EXAMPLES}/corral-tcp.conf > /etc/nginx/e2e/tcp.conf
    adapt 8082 < ${EXAMPLES}/corral-unix.conf > /etc/nginx/e2e/unix.conf
    adapt 8083 < ${EXAMPLES}/corral-tcp.conf | sed -e 's/corral_web/corral_web_close/g' -e '/^ *keepalive/d' \\
      -e 's#snippets/corral-proxy.conf#snippets/corral-proxy-close.conf#' > /etc/nginx/e2e/close.conf
    cat > /etc/nginx/e2e/nginx.conf <<'EOF'
user www-data;
worker_processes 2;
pid /run/e2e-nginx.pid;
error_log /var/log/nginx/e2e-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/e2e/unix.conf;
    access_log /var/log/nginx/e2e-access.log corral_upstream;
    include /etc/nginx/e2e/tcp.conf;
    include /etc/nginx/e2e/close.conf;
}
EOF
    nginx -t -c /etc/nginx/e2e/nginx.conf
    systemd-run --quiet --unit=e2e-nginx nginx -c /etc/nginx/e2e/nginx.conf -g 'daemon off;'
  `);
  for (const port of Object.keys(FRONTS)) {
    await waitFor(`nginx on ${port}`, async () => (await get(sb, { url: `http://127.0.0.1:${port}` })).status === 200, { timeoutMs: 30_000 });
  }
}

interface NginxLog {
  lines: number;
  statuses: Record<string, number>;
  retried: number;
  bad: string[];
}

async function nginxLog(sb: Sandbox): Promise<NginxLog> {
  const text = await sb.ok(['cat', '/var/log/nginx/e2e-access.log']);
  const out: NginxLog = { lines: 0, statuses: {}, retried: 0, bad: [] };
  for (const line of text.split('\n')) {
    const m = /" (\d{3}) \d+ rt=.* us=(\S+(?:, \S+)*) ua=/.exec(line);
    if (!m) continue;
    out.lines++;
    out.statuses[m[1]!] = (out.statuses[m[1]!] ?? 0) + 1;
    if (m[2]!.includes(',')) out.retried++;
    if (m[1] !== '200' && out.bad.length < 20) out.bad.push(line);
  }
  return out;
}

describe('behind nginx', { skip, timeout: 900_000 }, () => {
  const sandbox = useSandbox(import.meta.url);

  before(async () => {
    const sb = sandbox();
    await installApp(sb, {
      name: 'web', port: 8000, workers: 2, version: 'v1',
      extraArgs: ['--socket', 'unix:/run/corral/web.sock'],
    });
    await sb.ok(['systemctl', 'start', 'corral@web.service']);
    await startNginx(sb);
  });

  test('ten reloads and a max-requests recycling wave under load: no 502 or 504', async (t) => {
    const sb = sandbox();
    const stopFile = join(sb.dir, 'nginx.stop');
    const progressFile = join(sb.dir, 'nginx.progress');
    await sb.ok(['truncate', '-s', '0', '/var/log/nginx/e2e-access.log']);
    const loads = Object.entries(FRONTS).map(([port, what], i) => ({
      what,
      load: startLoad(sb, {
        url: `http://127.0.0.1:${port}`, concurrency: 3, requests: 500_000, seconds: 240,
        stopFile, progressFile: i === 0 ? progressFile : undefined, tag: `nginx-${port}`,
      }),
    }));
    await waitFor('the load to get going', () => progress(progressFile) > 100, { timeoutMs: 30_000 });

    for (let i = 2; i <= 11; i++) {
      await setVersion(sb, 'web', `v${i}`);
      await sb.ok(['systemctl', 'reload', 'corral@web.service']);
      await sleep(300);
    }
    // Recycling: a reload picks up max-requests from the app's .env; every worker is then
    // replaced after 150-200 requests, under load.
    await sb.sh(`printf 'CORRAL_MAX_REQUESTS=150\\nCORRAL_MAX_REQUESTS_JITTER=50\\n' > /srv/web/.env`);
    await sb.ok(['systemctl', 'reload', 'corral@web.service']);
    const recycled = await waitFor('a recycling wave (every worker replaced at least once)', async () => {
      const j = await sb.journal('corral@web.service', '-o', 'cat', '--grep', 'replaced \\(max-requests\\)');
      const n = j.trim() === '' ? 0 : j.trim().split('\n').length;
      return n >= 4 ? n : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    writeFileSync(stopFile, '');

    const results: Array<{ what: string; r: LoadResult }> = [];
    for (const { what, load } of loads) results.push({ what, r: await load.result() });
    const log = await nginxLog(sb);
    t.diagnostic(`clients: ${results.map(({ what, r }) => `${what}: ${r.ok}/${r.total}`).join('; ')}`);
    t.diagnostic(`nginx: ${log.lines} requests, statuses ${JSON.stringify(log.statuses)}, ${log.retried} retried upstream; ${recycled} workers recycled`);
    assert.equal(log.statuses['502'] ?? 0, 0, `502s:\n${log.bad.join('\n')}`);
    assert.equal(log.statuses['504'] ?? 0, 0, `504s:\n${log.bad.join('\n')}`);
    assert.deepEqual(Object.keys(log.statuses), ['200'], log.bad.join('\n'));
    for (const { what, r } of results) {
      assert.equal(r.failed, 0, `${what}: ${JSON.stringify(r.errors)}\n${r.samples.join('\n')}`);
      assert.ok(r.total >= 500, `${what}: only ${r.total} requests`);
    }
    assert.equal(log.lines, results.reduce((n, { r }) => n + r.total, 0), 'nginx logged every request');
    const errors = await sb.exec(['grep', '-c', 'upstream', '/var/log/nginx/e2e-error.log']);
    t.diagnostic(`nginx error log: ${errors.stdout.trim() || '0'} upstream lines`);
  });
});
