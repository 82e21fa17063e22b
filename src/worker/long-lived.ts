import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DrainReason, LongLivedFigures } from '../ipc/messages.js';

/**
 * The worker's long-lived connections: upgraded sockets (WebSockets) and Server-Sent Event
 * streams, a class of their own beside ordinary requests. They are counted, aged, logged
 * when they close, and ended politely by a drain (docs/long-lived.md).
 */
export class LongLived {
  /**
   * An Upgrade request is about to be handed to the app's upgrade handler (server.ts calls
   * this before the app sees it). From here on corral tracks the socket as an upgraded one.
   */
  upgraded(_req: IncomingMessage, _socket: Duplex): void {}

  /** The worker drains: what the app leaves open is ended, spread over the window. */
  drain(_reason: DrainReason): void {}

  /** What the heartbeat reports (docs/metrics.md). */
  figures(): LongLivedFigures {
    return { websockets: 0, streams: 0, closed: [], durations: [] };
  }
}
