import { accessSync, chmodSync, constants, fstatSync, readdirSync, readFileSync, readlinkSync, statSync, unlinkSync } from 'node:fs';
import * as net from 'node:net';
import { dirname, resolve } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { CorralError } from '../errors.js';
import { parseBind, type BindSpec } from './bind-spec.js';
import { removeStaleSocket } from './stale-socket.js';
import { LISTEN_ENV, unsetEnv } from '../systemd/env.js';
import { MAX_DESCRIPTORS, parseListenFds } from '../systemd/listen-fds.js';

/** A listening socket owned by the master for its whole life and shared with every worker. */
export interface Listener {
  fd: number;
  /** For logs: "127.0.0.1:8000", "unix:/run/app.sock", "systemd:web (fd 3)". */
  label: string;
  /** What the proxy-protocol setting may call it: the --bind address as given and as bound, or systemd:NAME and fd://N. */
  names: string[];
  /** The name systemd gave a passed socket (FileDescriptorName=). */
  name?: string;
  /** Serves TLS (set once at start from tls-cert and tls-bind: tls/listeners.ts). */
  tls?: boolean;
  /** Removes what the master created (a unix socket file) at exit. */
  cleanup(): void;
  /** Closes a socket corral bound itself and removes its file (`corral check`); passed sockets stay open. */
  close(): void;
}

/** The raw handle type net._createServerHandle returns (a TCP or Pipe wrap). */
interface RawHandle {
  fd: number;
  getsockname?(out: Record<string, unknown>): number;
  getpeername?(out: Record<string, unknown>): number;
  close(cb?: () => void): void;
}

type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => RawHandle | number;

/**
 * Binds without listening. Node's public API cannot do that (listen() would make this
 * process accept connections too), so this uses the same internal node:cluster uses to
 * create shared handles; the first worker's listen() puts the socket in LISTEN state.
 */
function createServerHandle(): CreateServerHandle {
  const fn = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof fn !== 'function') throw new Error('this Node.js version lacks net._createServerHandle; corral needs Node.js 20 or 22');
  return fn;
}

/** Handles are kept referenced here so they are never garbage-collected (which would close them). */
const held: RawHandle[] = [];

/**
 * The master's listeners: the sockets systemd passed (LISTEN_FDS), or else its own binds.
 * LISTEN_* are removed from the environment either way.
 */
export async function acquireListeners(binds: BindSpec[], opts: { unixSocketMode: number }): Promise<Listener[]> {
  const passed = passedListeners();
  if (passed.length > 0) return passed;
  const listeners: Listener[] = [];
  try {
    for (const b of binds) listeners.push(await bindListener(b, opts));
  } catch (err) {
    for (const l of listeners) l.close();
    throw err;
  }
  return listeners;
}

/**
 * The sockets systemd passed, each checked to be one to accept connections on. LISTEN_* are
 * removed from this process's environment (sd_listen_fds(3) with unset_environment), so
 * nothing started from it later, the app's own children in `corral check` included, takes
 * sockets meant for the master.
 */
export function passedListeners(): Listener[] {
  let passed;
  try {
    passed = parseListenFds(process.env, process.pid, openDescriptorsFrom3());
  } finally {
    unsetEnv(process.env, LISTEN_ENV);
  }
  return passed.map((p) => {
    assertStreamSocket(p.fd, `systemd passed fd ${p.fd} (${p.name})`);
    return { fd: p.fd, label: `systemd:${p.name} (fd ${p.fd})`, names: [`systemd:${p.name}`, `fd://${p.fd}`], name: p.name, cleanup: () => {}, close: () => {} };
  });
}

/** How many descriptors from fd 3 up this process has open: the most LISTEN_FDS can name. */
function openDescriptorsFrom3(): number {
  try {
    return readdirSync('/proc/self/fd').filter((n) => Number(n) >= 3).length;
  } catch {
    return MAX_DESCRIPTORS; // no /proc: each descriptor is still checked below
  }
}

/**
 * A passed descriptor must be a stream socket that can accept connections: bound or
 * listening TCP, or a unix stream socket. A UDP socket or a connection (a socket unit
 * with Accept=yes, or a connected fd://N) would only fail in every worker's listen(),
 * and the restarts would loop; here it is one configuration error.
 */
function assertStreamSocket(fd: number, what: string): void {
  let ok = false;
  try {
    ok = fstatSync(fd).isSocket();
  } catch {
    ok = false;
  }
  if (!ok) throw new CorralError('E_LISTEN_FDS', `${what} is not an open socket`);
  // libuv tells the socket's type (getsockopt SO_TYPE, getsockname) and refuses anything
  // but a TCP or unix stream socket. The handle then owns the fd; it is kept for good.
  const h = createServerHandle()(null, 0, 0, fd);
  if (typeof h === 'number') {
    throw new CorralError('E_LISTEN_FDS', `${what} is not a stream socket (a UDP or other datagram socket?): corral serves HTTP over TCP or unix stream sockets (ListenStream= in a socket unit)`);
  }
  held.push(h);
  const peer: Record<string, unknown> = {};
  if (typeof h.getpeername === 'function') {
    if (h.getpeername(peer) === 0) throw connectedError(what, `to ${String(peer.address)}:${String(peer.port)}`);
    const local: Record<string, unknown> = {};
    if (h.getsockname?.(local) === 0 && local.port === 0) {
      throw new CorralError('E_LISTEN_FDS', `${what} is a TCP socket bound to no address; pass a socket that is bound (or listening)`);
    }
  } else if (unixSocketState(fd) === 'connected') {
    throw connectedError(what, 'over a unix socket');
  }
}

function connectedError(what: string, peer: string): CorralError {
  return new CorralError('E_LISTEN_FDS', `${what} is a connected socket (a connection ${peer}), not one to accept connections on; a socket unit for corral needs Accept=no (the default)`);
}

/**
 * The state of a unix socket from /proc/net/unix (found by the inode behind
 * /proc/self/fd/N): "connected" is St 03 (SS_CONNECTED). Undefined when it cannot be
 * told (no /proc, another network namespace): the workers' listen() is the judge then.
 */
function unixSocketState(fd: number): 'connected' | 'other' | undefined {
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (!inode) return undefined;
    for (const line of readFileSync('/proc/self/net/unix', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[6] === inode) return f[5] === '03' ? 'connected' : 'other';
    }
  } catch {
    // not Linux, or /proc not mounted
  }
  return undefined;
}

/** One --bind address, bound (not listening) and checked; a taken address fails here, not in the workers. */
export async function bindListener(b: BindSpec, opts: { unixSocketMode: number }): Promise<Listener> {
  const create = createServerHandle();
  if (b.kind === 'fd') {
    assertStreamSocket(b.fd, `--bind ${b.text}`);
    return { fd: b.fd, label: b.text, names: [b.text], cleanup: () => {}, close: () => {} };
  }
  if (b.kind === 'unix') {
    await removeStaleSocket(b.path, b.text);
    const h = create(b.path, -1, -1);
    if (typeof h === 'number') throw unixBindError(h, b.path, b.text);
    held.push(h);
    chmodSync(b.path, opts.unixSocketMode);
    return { fd: h.fd, label: b.text, names: [b.text], cleanup: () => safeUnlink(b.path), close: () => release(h, () => safeUnlink(b.path)) };
  }
  const address = net.isIP(b.host) ? b.host : await resolveHost(b.host, b.text);
  const h = create(address, b.port, net.isIP(address));
  if (typeof h === 'number') throw bindError(h, b.text);
  const out: Record<string, unknown> = {};
  // libuv defers bind()'s EADDRINUSE to listen(), which happens in the workers;
  // getsockname() reports the deferred error, so a taken address is caught here.
  const err = h.getsockname?.(out) ?? 0;
  if (err !== 0) {
    h.close();
    throw bindError(err, b.text);
  }
  held.push(h);
  const port = typeof out.port === 'number' ? out.port : b.port;
  const label = net.isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
  return { fd: h.fd, label, names: [b.text, label], cleanup: () => {}, close: () => release(h) };
}

/**
 * Which listeners expect a PROXY protocol header, from the proxy-protocol setting's items
 * (systemd:NAME, or an address as --bind takes it). An item that names no listener is a
 * configuration error: a typo must not leave a listener trusting its peers' addresses less
 * (or more) than meant.
 */
export function proxyProtocolListeners(items: string[], listeners: Listener[]): boolean[] {
  const wanted = items.map((i) => (i.startsWith('systemd:') ? i : parseBind(i).text));
  const unmatched = wanted.filter((w) => !listeners.some((l) => l.names.includes(w)));
  if (unmatched.length > 0) {
    const known = listeners.flatMap((l) => l.names).join(', ');
    throw new CorralError('E_CONFIG_VALUE', `proxy-protocol names ${unmatched.join(', ')}, which is not a listener (the listeners: ${known})`);
  }
  return listeners.map((l) => l.names.some((n) => wanted.includes(n)));
}

function release(h: RawHandle, then?: () => void): void {
  const i = held.indexOf(h);
  if (i >= 0) held.splice(i, 1);
  h.close();
  then?.();
}

async function resolveHost(host: string, text: string): Promise<string> {
  try {
    // Loaded only here: most binds are IP literals, and the module costs a few ms of start-up.
    const { lookup } = await import('node:dns/promises');
    return (await lookup(host)).address;
  } catch (err) {
    throw new CorralError('E_BIND_FAILED', `cannot bind ${text}: host ${host} does not resolve (${(err as NodeJS.ErrnoException).code})`);
  }
}

function bindError(errno: number, text: string): CorralError {
  const name = getSystemErrorName(errno);
  if (name === 'EADDRINUSE') return new CorralError('E_BIND_IN_USE', `cannot bind ${text}: address already in use (another process listens there; stop it or choose another --bind)`);
  if (name === 'EACCES' || name === 'EPERM') return new CorralError('E_BIND_DENIED', `cannot bind ${text}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; a systemd socket unit can bind for you)`);
  if (name === 'EADDRNOTAVAIL') return new CorralError('E_BIND_FAILED', `cannot bind ${text}: address not available on this host`);
  return new CorralError('E_BIND_FAILED', `cannot bind ${text}: ${name}`);
}

/**
 * libuv reports a missing directory as EACCES too (uv_pipe_bind maps ENOENT to it), so
 * the directory is looked at to say which it is.
 */
function unixBindError(errno: number, path: string, text: string): CorralError {
  const name = getSystemErrorName(errno);
  if (name !== 'EACCES' && name !== 'EPERM' && name !== 'ENOENT') return bindError(errno, text);
  const dir = dirname(resolve(path));
  const uid = process.getuid?.() ?? '?';
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      return new CorralError('E_BIND_DENIED', `cannot bind ${text}: the directory ${dir} cannot be reached by uid ${uid} that corral runs as (${(err as NodeJS.ErrnoException).code} on a parent directory)`);
    }
    return new CorralError('E_BIND_FAILED', `cannot bind ${text}: the directory ${dir} does not exist (create it; under systemd, RuntimeDirectory= makes /run/NAME for the service)`);
  }
  if (!isDir) return new CorralError('E_BIND_FAILED', `cannot bind ${text}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    return new CorralError('E_BIND_DENIED', `cannot bind ${text}: the directory ${dir} is not writable by uid ${uid} that corral runs as (make it writable for that user, or let systemd create it with RuntimeDirectory=)`);
  }
  return new CorralError('E_BIND_DENIED', `cannot bind ${text}: permission denied (${name}) creating the socket in ${dir}`);
}

function safeUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
