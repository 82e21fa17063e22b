/**
 * A hapi server (`Hapi.server(...)`, as hapi's docs build one) served on corral's sockets.
 * hapi creates its own http.Server, `server.listener`, and attaches its dispatcher to its
 * 'request' event; corral's servers hand each request (and each upgrade, when something such
 * as a WebSocket plugin listens for them there) on to that listener, which never listens.
 *
 * hapi answers every request with `Connection: close` while it is not started, and
 * `server.start()` would listen itself: corral starts it with `autoListen` off, so hapi
 * runs its whole lifecycle (onPreStart, onPostStart, then onPreStop and onPostStop at the
 * drain) and keeps connections alive, without ever binding. Its `cleanStop` tracks the
 * connections of its own listener, which gets none: corral's drain does that work.
 */
import type { EventEmitter } from 'node:events';
import type { Server as NetServer } from 'node:net';
import { AppLoadError, type LoadedApp } from './app-shape.js';

/** What corral uses of a hapi server (@hapi/hapi 20 and 21). */
interface HapiServer {
  listener: NetServer & EventEmitter;
  settings: { autoListen?: boolean; operations?: { cleanStop?: boolean } };
  info?: { started?: number; uri?: string };
  start(): Promise<void>;
  stop(options?: { timeout?: number }): Promise<void>;
}

/** A hapi server: its own (unstarted) listener, the lifecycle methods and hapi's route(). */
export function isHapiServer(v: unknown): v is HapiServer {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const listener = o.listener as { listen?: unknown; emit?: unknown } | undefined;
  return typeof o.initialize === 'function' && typeof o.start === 'function' && typeof o.stop === 'function'
    && typeof o.route === 'function' && typeof o.ext === 'function' && typeof o.settings === 'object'
    && typeof listener?.listen === 'function' && typeof listener.emit === 'function';
}

/**
 * A hapi server the app started so that it listens: its listener listens, or is about to (a
 * start under way). One the app started with `autoListen: false` never binds: corral serves it.
 */
export function hapiStarted(server: HapiServer): boolean {
  return server.listener.listening || ((server.info?.started ?? 0) > 0 && server.settings.autoListen !== false);
}

export function hapiApp(server: HapiServer, where: string): LoadedApp {
  const { listener } = server;
  return {
    kind: 'hapi',
    handler: (req, res) => listener.emit('request', req, res),
    init: async () => {
      if (hapiStarted(server)) {
        throw new AppLoadError('E_APP_LISTENING', `${where} is a hapi server the app started itself (server.start()); export it without starting it: corral starts it without listening`);
      }
      server.settings.autoListen = false;
      if (server.settings.operations) server.settings.operations.cleanStop = false;
      // Resolves at once when the app started it already (with autoListen off).
      await server.start();
    },
    // Requests are over when close runs; the timeout bounds what hapi would wait for
    // connections of its own, and stays within graceful-timeout.
    close: (budgetMs) => server.stop({ timeout: Math.max(0, Math.floor(budgetMs)) }),
    upgrade: () => {
      if (listener.listenerCount('upgrade') === 0) return undefined;
      return (req, socket, head) => listener.emit('upgrade', req, socket, head);
    },
  };
}
