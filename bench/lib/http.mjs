// Readiness probe: a contender is ready when it answers 200. Each attempt
// uses a fresh connection (agent: false) so a refused connect is retried
// quickly, while a connection queued in a listen backlog simply waits for
// its answer.
import http from 'node:http';
import { sleep } from './proc.mjs';

function getOnce(port, { host = '127.0.0.1', path = '/', timeoutMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

// Resolves with the number of milliseconds it took; rejects when the
// deadline passes or `abort()` returns a reason (the process died).
export async function waitFor200(port, { host, deadlineMs = 20000, abort = () => null } = {}) {
  const start = performance.now();
  let lastError = 'no attempt';
  while (performance.now() - start < deadlineMs) {
    const why = abort();
    if (why) throw new Error(why);
    try {
      const remaining = Math.max(100, deadlineMs - (performance.now() - start));
      const res = await getOnce(port, { host, timeoutMs: remaining });
      if (res.status === 200) return performance.now() - start;
      lastError = `status ${res.status}`;
    } catch (err) {
      lastError = err.code || err.message;
    }
    await sleep(5);
  }
  throw new Error(`no 200 on port ${port} within ${deadlineMs} ms (last: ${lastError})`);
}
