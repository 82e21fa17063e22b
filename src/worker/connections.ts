import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { BusyWith } from '../ipc/messages.js';

interface Conn {
  busy: number;
  idleSince: number;
  closeAfterResponse: boolean;
  responses: Set<ServerResponse>;
}

interface InFlight {
  method: string;
  url: string;
  start: number;
}

/** An idle keep-alive connection is closed during a drain once it has been idle this long. */
const DRAIN_IDLE_MS = 300;
const DRAIN_POLL_MS = 50;

/**
 * Tracks the worker's connections and requests so a drain can finish in-flight requests,
 * tell keep-alive clients to go elsewhere (Connection: close) and close idle connections
 * without racing a client that is about to reuse one.
 */
export class ConnectionTracker {
  private readonly conns = new Map<Socket, Conn>();
  private readonly inflight = new Set<InFlight>();
  private draining = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private onEmpty: (() => void) | undefined;

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => {
      const conn: Conn = { busy: 0, idleSince: performance.now(), closeAfterResponse: false, responses: new Set() };
      this.conns.set(socket, conn);
      socket.once('close', () => {
        this.conns.delete(socket);
        this.checkEmpty();
      });
    });
  }

  /** Called for every request before the app sees it. */
  begin(req: IncomingMessage, res: ServerResponse): void {
    const conn = this.conns.get(req.socket);
    const entry: InFlight = { method: req.method ?? '?', url: req.url ?? '', start: performance.now() };
    this.inflight.add(entry);
    if (conn) {
      conn.busy++;
      conn.responses.add(res);
    }
    if (this.draining) res.setHeader('Connection', 'close');
    res.once('close', () => {
      this.inflight.delete(entry);
      if (conn) {
        conn.busy--;
        conn.responses.delete(res);
        conn.idleSince = performance.now();
        if (this.draining && conn.busy === 0) req.socket.end();
      }
      this.checkEmpty();
    });
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** The oldest request still being served. */
  oldest(): BusyWith | undefined {
    for (const e of this.inflight) return { method: e.method, url: e.url, forMs: Math.round(performance.now() - e.start) };
    return undefined;
  }

  /** Starts a drain; resolves when every connection is closed. */
  drain(): Promise<void> {
    this.draining = true;
    for (const [socket, conn] of this.conns) {
      for (const res of conn.responses) {
        if (!res.headersSent) res.setHeader('Connection', 'close');
      }
      if (conn.busy > 0) conn.closeAfterResponse = true;
      else if (performance.now() - conn.idleSince >= DRAIN_IDLE_MS) socket.end();
    }
    this.drainTimer = setInterval(() => this.closeIdle(), DRAIN_POLL_MS);
    return new Promise((resolve) => {
      this.onEmpty = resolve;
      this.checkEmpty();
    });
  }

  /** Fast stop: every connection is cut now. */
  destroyAll(): void {
    for (const socket of this.conns.keys()) socket.destroy();
  }

  private closeIdle(): void {
    const now = performance.now();
    for (const [socket, conn] of this.conns) {
      if (conn.busy === 0 && now - conn.idleSince >= DRAIN_IDLE_MS) socket.end();
    }
  }

  private checkEmpty(): void {
    if (!this.draining || this.conns.size > 0 || this.inflight.size > 0 || !this.onEmpty) return;
    clearInterval(this.drainTimer);
    const done = this.onEmpty;
    this.onEmpty = undefined;
    done();
  }
}
