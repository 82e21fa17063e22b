// wrk runner and parser of its standard text output (no Lua scripts, so any
// wrk 4.x build works).
import { execFile } from 'node:child_process';

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60000, h: 3600000 };

function durationMs(value, unit) {
  return Number(value) * UNIT_MS[unit];
}

// Turns wrk's report into numbers. Lines that are absent (no socket errors,
// no non-2xx) mean zero.
function parseWrk(text) {
  const out = {
    requests: 0, seconds: 0, rps: 0, latencyAvgMs: null, latencyMaxMs: null,
    p50Ms: null, p99Ms: null,
    socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 }, non2xx: 0,
  };
  let m = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(text);
  if (!m) throw new Error(`cannot parse wrk output:\n${text}`);
  out.requests = Number(m[1]);
  out.seconds = durationMs(m[2], m[3]) / 1000;
  m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  out.rps = m ? Number(m[1]) : out.requests / out.seconds;
  m = /Latency\s+([\d.]+)(us|ms|s|m|h)\s+\S+\s+([\d.]+)(us|ms|s|m|h)/.exec(text);
  if (m) {
    out.latencyAvgMs = durationMs(m[1], m[2]);
    out.latencyMaxMs = durationMs(m[3], m[4]);
  }
  for (const [key, pct] of [['p50Ms', '50'], ['p99Ms', '99']]) {
    m = new RegExp(`^\\s+${pct}(?:\\.0+)?%\\s+([\\d.]+)(us|ms|s|m|h)`, 'm').exec(text);
    if (m) out[key] = durationMs(m[1], m[2]);
  }
  m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (m) out.socketErrors = { connect: +m[1], read: +m[2], write: +m[3], timeout: +m[4] };
  m = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (m) out.non2xx = Number(m[1]);
  const se = out.socketErrors;
  out.errors = se.connect + se.read + se.write + se.timeout + out.non2xx;
  return out;
}

// One bounded wrk run. `close: true` asks for a new connection per request.
export function runWrk({ url, threads = 1, connections = 64, durationS = 10, close = false, timeoutS = 5 }) {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${durationS}s`,
    '--timeout', `${timeoutS}s`, '--latency'];
  if (close) args.push('-H', 'Connection: close');
  args.push(url);
  // The kill timer is a safety net: wrk stops by itself after durationS.
  const killAfterMs = (durationS + timeoutS + 10) * 1000;
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: killAfterMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const hint = err.code === 'ENOENT' ? ' (wrk is not installed: apt-get install wrk)' : '';
        reject(new Error(`wrk ${args.join(' ')} failed${hint}: ${err.message}\n${stderr}`));
        return;
      }
      try {
        resolve({ ...parseWrk(stdout), args });
      } catch (parseErr) {
        reject(parseErr);
      }
    });
  });
}

export function wrkVersion() {
  return new Promise((resolve) => {
    // `wrk -v` prints its version and usage, and exits non-zero.
    execFile('wrk', ['-v'], (err, stdout, stderr) => {
      const m = /wrk (\S+)/.exec(`${stdout}${stderr}`);
      resolve(m ? m[1] : (err && err.code === 'ENOENT' ? 'not installed' : 'unknown'));
    });
  });
}
