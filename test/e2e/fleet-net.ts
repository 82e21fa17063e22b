/**
 * A fleet for the end-to-end tests: three hosts, each a real systemd in its own sandbox
 * (sd-sandbox.sh: its own pid, mount and network namespaces) with corral installed by
 * scripts/install, and a fourth sandbox for the load balancer and the load client. Each
 * host is joined to the balancer's sandbox by its own veth pair, created straight inside
 * the sandboxes' network namespaces: nothing is added to the host's network, the addresses
 * (10.231.0.0/24) exist only on those veths, and there is no route anywhere else. Powering
 * a sandbox off destroys its end of the veth, and with it the pair.
 *
 * `useFleet()` boots it all in before() and powers every sandbox off in after(), which
 * node:test runs even when a test or before() failed; a fleet left by a crashed run is
 * removed by the next run.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import {
  BASE, CommandError, installApp, installCorral, reapStale, REPO, run, SANDBOX_SH, Sandbox, waitFor,
} from './harness.js';

export const FLEET_LOAD_JS = join(REPO, 'dist/test/e2e/fleet-load.js');
/** The app's port on every host, and the port of the master's metrics listener. */
export const APP_PORT = 8000;
export const METRICS_PORT = 9100;

export interface Host {
  /** h1, h2, h3: also the prefix of the version the app answers with. */
  name: string;
  sb: Sandbox;
  /** Its address on its veth; the balancer's end is `peer`. */
  addr: string;
  peer: string;
  /** The veth's name inside the host's sandbox. */
  dev: string;
}

export interface Fleet {
  lb: Sandbox;
  hosts: Host[];
}

export interface FleetOptions {
  /** Arguments for scripts/install on every host, besides name, app, port and version. */
  installArgs: string[];
}

const PREFIX = 'corral-fleet-';

function names(pid: number): { lb: string; hosts: string[] } {
  return { lb: `${PREFIX}lb-${pid}`, hosts: [1, 2, 3].map((i) => `${PREFIX}h${i}-${pid}`) };
}

function sdsEnv(name: string): NodeJS.ProcessEnv {
  return { ...process.env, SDS_NAME: name, SDS_BASE: BASE };
}

/** The host PID of a sandbox's systemd (its network namespace is that process's). */
async function sandboxPid(sb: Sandbox): Promise<number> {
  const r = await run(['bash', SANDBOX_SH, 'pid'], { env: sdsEnv(sb.name), timeoutMs: 10_000 });
  const pid = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isInteger(pid) || pid <= 1) throw new CommandError(['sd-sandbox.sh', 'pid'], r);
  return pid;
}

/** A command in the network namespace of the process `pid` (only that namespace: PIDs stay the host's). */
async function inNetns(pid: number, cmd: string[]): Promise<void> {
  const argv = ['nsenter', `--target=${pid}`, '--net', '--', ...cmd];
  const r = await run(argv, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new CommandError(argv, r);
}

/** The owner of a fleet sandbox: corral-fleet-(lb|hN)-PID. */
function fleetOwner(name: string): number | undefined {
  const m = /^corral-fleet-(?:lb|h\d)-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Joins a host to the balancer: a veth pair, one end in each sandbox, a /30 between them. */
async function link(lbPid: number, host: Host): Promise<void> {
  const hostPid = await sandboxPid(host.sb);
  const lbDev = `to-${host.name}`;
  await inNetns(lbPid, ['ip', 'link', 'add', lbDev, 'type', 'veth', 'peer', 'name', host.dev, 'netns', String(hostPid)]);
  await inNetns(lbPid, ['ip', 'addr', 'add', `${host.peer}/30`, 'dev', lbDev]);
  await inNetns(lbPid, ['ip', 'link', 'set', lbDev, 'up']);
  await host.sb.sh(`ip addr add ${host.addr}/30 dev ${host.dev}; ip link set ${host.dev} up`);
}

/**
 * Boots the fleet before the tests of the file and powers it off after them. Each host
 * runs the fixture app as corral@web, answering "hello hN.v1 PID".
 */
export function useFleet(o: FleetOptions): () => Fleet {
  const n = names(process.pid);
  const lb = new Sandbox(n.lb);
  const hosts: Host[] = n.hosts.map((name, i) => ({
    name: `h${i + 1}`,
    sb: new Sandbox(name),
    // Link i uses 10.231.0.4i/30: the balancer .4i+1, the host .4i+2.
    peer: `10.231.0.${4 * (i + 1) + 1}`,
    addr: `10.231.0.${4 * (i + 1) + 2}`,
    dev: 'lb0',
  }));
  const all = [lb, ...hosts.map((h) => h.sb)];
  let ready = false;

  before(async () => {
    await reapStale(fleetOwner);
    // Every sandbox is brought up even when one fails, so that after() finds them all.
    const ups = await Promise.allSettled(all.map((sb) => sb.up()));
    const failed = ups.find((u) => u.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const lbPid = await sandboxPid(lb);
    for (const h of hosts) await link(lbPid, h);
    for (const h of hosts) {
      await installCorral(h.sb);
      await installApp(h.sb, {
        name: 'web', port: APP_PORT, workers: 1, version: `${h.name}.v1`,
        extraArgs: ['--host', '0.0.0.0', ...o.installArgs],
      });
      await h.sb.ok(['systemctl', 'start', 'corral@web.service'], { timeoutMs: 60_000 });
    }
    for (const h of hosts) {
      await waitFor(`${h.name} reachable from the balancer`, async () => (await httpStatus(lb, `http://${h.addr}:${APP_PORT}/`)) === 200, { timeoutMs: 20_000 });
    }
    ready = true;
  }, { timeout: 240_000 });

  after(async () => {
    const errors: unknown[] = [];
    for (const h of hosts) await saveJournal(h).catch(() => {});
    // One by one: a failure to power one off must not leave the others running.
    for (const sb of all) {
      try {
        await sb.down();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw errors[0];
  }, { timeout: 300_000 });

  return () => {
    if (!ready) throw new Error('the fleet is not up');
    return { lb, hosts };
  };
}

async function saveJournal(h: Host): Promise<void> {
  const file = join(BASE, 'logs', `fleet-${h.name}.journal`);
  mkdirSync(join(BASE, 'logs'), { recursive: true });
  await h.sb.ok(['sh', '-c', `journalctl --no-pager -o short-precise > '${file}'`], { timeoutMs: 60_000 });
}

/** The status of one GET from inside `sb` (0: no answer within 2 s). */
export async function httpStatus(sb: Sandbox, url: string): Promise<number> {
  const r = await sb.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', url], { timeoutMs: 10_000 });
  return Number(r.stdout.trim()) || 0;
}
