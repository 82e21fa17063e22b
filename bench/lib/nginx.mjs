// A private nginx in front of the contenders: own prefix, config, pid file
// and logs in a temp dir, loopback ports only, started in the foreground
// (daemon off) so the bench holds its master's pid and stops it by that pid.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFile } from 'node:child_process';
import { freePort } from './ports.mjs';
import { waitFor200 } from './http.mjs';
import { isAlive, sleep } from './proc.mjs';
import { onCleanup } from './cleanup.mjs';

const HOST = '127.0.0.1';

function nginxBinary() {
  for (const candidate of [process.env.BENCH_NGINX, '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  throw new Error('nginx is not installed (apt-get install nginx, or set BENCH_NGINX)');
}

export function nginxVersion() {
  return new Promise((resolve) => {
    let bin;
    try { bin = nginxBinary(); } catch { resolve('not installed'); return; }
    execFile(bin, ['-v'], (err, stdout, stderr) => {
      const m = /nginx\/(\S+)/.exec(`${stdout}${stderr}`);
      resolve(m ? m[1] : 'unknown');
    });
  });
}

// Two front ports per upstream: 'close' opens a new upstream connection for
// every request (nginx's default: HTTP/1.0, no upstream keepalive), and
// 'keepalive' reuses up to 32 idle upstream connections per nginx worker.
function renderConfig(prefix, upstreams, workerProcesses) {
  const blocks = upstreams.map(({ name, port, frontClose, frontKeepalive }) => `
  upstream ${name}_close { server ${HOST}:${port}; }
  upstream ${name}_keepalive { server ${HOST}:${port}; keepalive 32; }
  server {
    listen ${HOST}:${frontClose};
    location / { proxy_pass http://${name}_close; }
  }
  server {
    listen ${HOST}:${frontKeepalive};
    location / {
      proxy_pass http://${name}_keepalive;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`).join('\n');
  return `worker_processes ${workerProcesses};
daemon off;
master_process on;
pid ${path.join(prefix, 'nginx.pid')};
error_log ${path.join(prefix, 'error.log')} warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path ${path.join(prefix, 'client_body')};
  proxy_temp_path ${path.join(prefix, 'proxy')};
  fastcgi_temp_path ${path.join(prefix, 'fastcgi')};
  uwsgi_temp_path ${path.join(prefix, 'uwsgi')};
  scgi_temp_path ${path.join(prefix, 'scgi')};
${blocks}
}
`;
}

// upstreams: [{ name, port }]. Resolves with { fronts: {name: {close, keepalive}}, stop() }.
export async function startNginx({ tmp, upstreams, workerProcesses = 2 }) {
  const bin = nginxBinary();
  const prefix = fs.mkdtempSync(path.join(tmp, 'nginx-'));
  // nginx workers drop to an unprivileged user when started as root; they
  // must be able to reach the temp dirs under the prefix.
  fs.chmodSync(prefix, 0o755);
  const withPorts = [];
  for (const u of upstreams) {
    withPorts.push({ ...u, name: u.name.replace(/[^a-z0-9]/gi, '_'), frontClose: await freePort(), frontKeepalive: await freePort() });
  }
  const conf = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(conf, renderConfig(prefix, withPorts, workerProcesses));
  const log = fs.openSync(path.join(prefix, 'stderr.log'), 'a');
  const child = spawn(bin, ['-p', `${prefix}/`, '-c', conf, '-e', path.join(prefix, 'error.log')],
    { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exitInfo = null;
  child.on('exit', (code, signal) => { exitInfo = { code, signal }; });
  child.on('error', (err) => { exitInfo = { error: err.message }; });

  let forget = () => {};
  const stop = async () => {
    forget();
    if (exitInfo) return;
    // QUIT: graceful shutdown of nginx's master and workers.
    try { process.kill(child.pid, 'SIGQUIT'); } catch { /* gone */ }
    const t0 = performance.now();
    while (!exitInfo && performance.now() - t0 < 10000) await sleep(20);
    if (!exitInfo && isAlive(child.pid)) {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  };

  forget = onCleanup(stop);
  const fronts = {};
  try {
    for (const u of withPorts) {
      const abort = () => exitInfo && `nginx exited ${JSON.stringify(exitInfo)}: ${fs.readFileSync(path.join(prefix, 'error.log'), 'utf8')}`;
      await waitFor200(u.frontClose, { abort, deadlineMs: 10000 });
      await waitFor200(u.frontKeepalive, { abort, deadlineMs: 10000 });
      fronts[upstreams[withPorts.indexOf(u)].name] = {
        close: `http://${HOST}:${u.frontClose}/`,
        keepalive: `http://${HOST}:${u.frontKeepalive}/`,
      };
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { fronts, pid: child.pid, prefix, stop };
}
