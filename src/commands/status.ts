import { ControlConnection } from '../control/client.js';
import { findOnlyMaster } from '../control/path.js';
import { CorralError } from '../errors.js';
import type { StatusDoc } from '../metrics/master-metrics.js';

interface StatusOptions {
  json?: boolean;
  name?: string;
  /** Milliseconds, parsed by cli-args.ts. */
  timeout: number;
}

/** The master to ask: PID when given, else the only one running here (or as app NAME). */
function target(pid: number | undefined, name: string | undefined): { pid: number; path?: string } {
  if (pid !== undefined) return { pid };
  try {
    return findOnlyMaster(name);
  } catch (err) {
    throw new CorralError('E_STATUS_TARGET', (err as Error).message);
  }
}

/** Asks master PID for its live picture over the control socket; the answer is checked. */
export async function askStatus(pid: number, timeoutMs: number, path?: string): Promise<StatusDoc> {
  const c = new ControlConnection({ pid, code: 'E_STATUS_TARGET', ...(path !== undefined ? { path } : {}) });
  try {
    c.send('status');
    const end = performance.now() + timeoutMs;
    for (;;) {
      const msg = await c.next(
        Math.max(0, end - performance.now()),
        () => c.refuse(`control socket of ${pid}: no answer within ${timeoutMs / 1000} s`),
        () => c.refuse(`control socket of ${pid}: closed before answering (an older corral without \`status\`?)`),
      );
      if (msg.t === 'error') throw c.refuse(`control socket of ${pid}: ${msg.message}`);
      if (msg.t !== 'status') continue;
      if (msg.master.pid !== pid) throw c.refuse(`control socket of ${pid}: the socket answers for PID ${msg.master.pid}, not ${pid}`);
      return { master: msg.master, listeners: msg.listeners, workers: msg.workers };
    }
  } finally {
    c.close();
  }
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

/** A count an older master does not send: `-`, not a 0 it never said. */
const maybe = (n: number | undefined) => (n === undefined ? '-' : String(n));

/** The terminal rendering of a status document. */
export function renderStatus(st: StatusDoc): string {
  const m = st.master;
  const out = [
    `master ${m.pid}: ${m.phase}, up ${duration(m.uptimeS)}, generation ${m.generation}, ${m.workersDesired} worker(s) wanted, ${m.requests} request(s) served`,
    ...(m.scaling !== undefined ? [`scaling: ${m.scaling}`] : []),
    `last reload: ${m.lastReload}`,
    '',
    table(['listener', 'accept queue', 'limit'], st.listeners.map((l) => [l.label, l.queue === null ? 'n/a' : String(l.queue), l.limit === null ? 'n/a' : String(l.limit)])),
    '',
    table(
      ['slot', 'pid', 'gen', 'state', 'uptime', 'requests', 'in flight', 'ws', 'sse', 'rss', 'loop delay', 'loop busy', 'last check-in'],
      st.workers.map((w) => [
        String(w.slot), String(w.pid), String(w.generation), w.state, duration(w.uptimeS), String(w.requests), String(w.inflight),
        maybe(w.websockets), maybe(w.streams), mib(w.rssBytes), w.eventLoopDelayS === null ? '-' : `${(w.eventLoopDelayS * 1000).toFixed(1)} ms`,
        w.loopBusy === undefined ? '-' : `${Math.round(w.loopBusy * 100)} %`, `${duration(w.lastCheckinS)} ago`,
      ]),
    ),
  ];
  return out.join('\n') + '\n';
}

/** `corral status [--json] [--name NAME] [--timeout SECONDS] [PID]`; PID and the timeout come parsed (cli-args.ts). */
export async function statusCommand(pid: number | undefined, opts: StatusOptions): Promise<void> {
  const t = target(pid, opts.name);
  const st = await askStatus(t.pid, opts.timeout, t.path);
  process.stdout.write(opts.json ? JSON.stringify(st, null, 2) + '\n' : renderStatus(st));
}
