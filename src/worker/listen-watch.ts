/**
 * Notices servers an app makes listen while it loads. corral owns the sockets, so an app
 * written to run on its own (`app.listen(3000)`, hapi's `server.start()`) is a mistake to
 * name plainly; a server the app runs for itself on the side (an internal API on port 0) is
 * not, so what is seen is only reported when the export is missing or is that very server.
 */
import { Server as NetServer } from 'node:net';

/** A server the app made listen, and where it asked to listen, as a log shows an address. */
interface SeenListen {
  server: NetServer;
  where: string;
  /**
   * On an address every worker would ask for alike (a port other than 0, a unix path): with
   * more than one worker, all but the first fail to bind it.
   */
  fixed: boolean;
}

/** Where a listen() call asked to listen, from its arguments (the address may not be known yet). */
export function listenTarget(args: readonly unknown[]): string {
  const [first, second] = args;
  if (typeof first === 'object' && first !== null) {
    const o = first as { port?: unknown; host?: unknown; path?: unknown; fd?: unknown };
    if (typeof o.path === 'string') return `on ${o.path}`;
    if (o.fd !== undefined) return `on fd ${String(o.fd)}`;
    return hostPort(o.host, o.port);
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return `on ${first}`;
  return hostPort(typeof second === 'string' ? second : undefined, first);
}

/** Whether listen() was asked for a given port or path rather than any free port. */
function fixedTarget(args: readonly unknown[]): boolean {
  const [first] = args;
  if (typeof first === 'object' && first !== null) {
    const o = first as { port?: unknown; path?: unknown };
    return typeof o.path === 'string' || (o.port !== undefined && o.port !== null && Number(o.port) !== 0);
  }
  return (typeof first === 'string' || typeof first === 'number') && Number(first) !== 0;
}

function hostPort(host: unknown, port: unknown): string {
  const random = port === undefined || port === null || typeof port === 'function' || Number(port) === 0;
  if (typeof host !== 'string' || host === '') return random ? 'on a random port' : `on port ${String(port)}`;
  return random ? `on ${host} (a random port)` : `on ${host}:${String(port)}`;
}

/**
 * Records every net.Server#listen call (http, https and plain net servers) from construction
 * until `stop()`; the calls go through unchanged. One watch at a time.
 */
export class ListenWatch {
  readonly seen: SeenListen[] = [];
  readonly #original = NetServer.prototype.listen;

  constructor() {
    const { seen } = this;
    const original = this.#original;
    NetServer.prototype.listen = function listen(this: NetServer, ...args: unknown[]) {
      seen.push({ server: this, where: listenTarget(args), fixed: fixedTarget(args) });
      return (original as (...a: unknown[]) => NetServer).apply(this, args);
    } as typeof original;
  }

  stop(): void {
    NetServer.prototype.listen = this.#original;
  }

  /** The first server seen that `belongs` says is the app's own. */
  find(belongs: (server: NetServer) => boolean): SeenListen | undefined {
    return this.seen.find((s) => belongs(s.server));
  }
}
