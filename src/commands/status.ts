import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { candidateSocketPaths, distrust } from '../control/path.js';
import { CorralError } from '../errors.js';
import type { StatusDoc } from '../metrics/master-metrics.js';

export interface StatusOptions {
  json?: boolean;
  name?: string;
  timeout?: string;
}

/** Where systemd puts a named app's runtime directory (RuntimeDirectory=corral/%i). */
const RUN_ROOT = '/run/corral';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Masters with a control socket in dir: corral-PID.sock whose PID runs. */
function mastersIn(dir: string): Array<{ pid: number; path: string }> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^corral-(\d+)\.sock$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), path: join(dir, m[0]) }))
    .filter((m) => alive(m.pid));
}

/** The master to ask: by PID, by app name (systemd), or the only one running here. */
export function findMaster(pidText: string | undefined, name: string | undefined, env = process.env): { pid: number; path: string } {
  if (pidText !== undefined) {
    if (!/^\d+$/.test(pidText) || Number(pidText) < 2) throw new CorralError('E_STATUS_TARGET', `${JSON.stringify(pidText)} is not a process ID`);
    const pid = Number(pidText);
    const path = candidateSocketPaths(pid).find((p) => existsSync(p));
    if (!path) throw new CorralError('E_STATUS_TARGET', `PID ${pid} has no corral control socket (looked in ${candidateSocketPaths(pid).join(', ')}); is it a corral master?`);
    return { pid, path };
  }
  const dirs = name !== undefined ? [join(RUN_ROOT, name)] : [...(env.RUNTIME_DIRECTORY ? [env.RUNTIME_DIRECTORY.split(':')[0]!] : []), tmpdir()];
  for (const dir of dirs) {
    const found = mastersIn(dir);
    if (found.length === 1) return found[0]!;
    if (found.length > 1) throw new CorralError('E_STATUS_TARGET', `several corral masters in ${dir} (PIDs ${found.map((f) => f.pid).join(', ')}): give the PID`);
  }
  throw new CorralError('E_STATUS_TARGET', `no running corral master found in ${dirs.join(', ')}: give its PID${name === undefined ? ' or --name NAME' : ''}`);
}

/** A control socket is trusted only if its owner is the user the master runs as (see `distrust`). */
function checkOwner(pid: number, path: string): void {
  let why: string | undefined;
  try {
    why = distrust(path, lstatSync(path), statSync(`/proc/${pid}`).uid, pid);
  } catch (err) {
    why = `cannot check ${path}: ${(err as Error).message}`;
  }
  if (why !== undefined) throw new CorralError('E_STATUS_TARGET', `not trusting the control socket of PID ${pid}: ${why}`);
}

export function askStatus(path: string, pid: number, timeoutMs: number): Promise<StatusDoc> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      s.destroy();
      reject(new CorralError('E_STATUS_TARGET', `control socket of ${pid}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write('status\n'));
    s.on('error', (err) => fail(err.message));
    s.on('close', () => fail('closed before answering (an older corral without `status`?)'));
    s.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let msg: { t?: string; message?: string } & Partial<StatusDoc>;
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return fail(`unreadable answer ${JSON.stringify(line.slice(0, 80))}`);
        }
        if (msg.t === 'status') {
          clearTimeout(timer);
          s.removeAllListeners('close');
          s.destroy();
          if (msg.master?.pid !== pid) return fail(`the socket answers for PID ${msg.master?.pid}, not ${pid}`);
          return resolve({ master: msg.master, listeners: msg.listeners!, workers: msg.workers! });
        }
        if (msg.t === 'error') return fail(msg.message ?? 'error');
      }
    });
  });
}

function duration(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** The terminal rendering of a status document. */
export function renderStatus(st: StatusDoc): string {
  const m = st.master;
  const out = [
    `master ${m.pid}: ${m.phase}, up ${duration(m.uptimeS)}, generation ${m.generation}, ${m.workersDesired} worker(s) wanted, ${m.requests} request(s) served`,
    `last reload: ${m.lastReload}`,
    '',
    table(['listener', 'accept queue', 'limit'], st.listeners.map((l) => [l.label, l.queue === null ? 'n/a' : String(l.queue), l.limit === null ? 'n/a' : String(l.limit)])),
    '',
    table(
      ['slot', 'pid', 'gen', 'state', 'uptime', 'requests', 'in flight', 'rss', 'loop delay', 'last check-in'],
      st.workers.map((w) => [
        String(w.slot), String(w.pid), String(w.generation), w.state, duration(w.uptimeS), String(w.requests), String(w.inflight),
        mib(w.rssBytes), w.eventLoopDelayS === null ? '-' : `${(w.eventLoopDelayS * 1000).toFixed(1)} ms`, `${duration(w.lastCheckinS)} ago`,
      ]),
    ),
  ];
  return out.join('\n') + '\n';
}

/** `corral status [--json] [--name NAME] [PID]`. */
export async function statusCommand(pidText: string | undefined, opts: StatusOptions): Promise<void> {
  const timeout = Number(opts.timeout ?? '5');
  if (!Number.isFinite(timeout) || timeout <= 0) throw new CorralError('E_CONFIG_VALUE', `--timeout (from command line): ${JSON.stringify(opts.timeout)} is not valid: must be a number of seconds > 0`);
  const { pid, path } = findMaster(pidText, opts.name);
  checkOwner(pid, path);
  const st = await askStatus(path, pid, timeout * 1000);
  process.stdout.write(opts.json ? JSON.stringify(st, null, 2) + '\n' : renderStatus(st));
}
