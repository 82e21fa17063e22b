import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { BusyWith } from '../ipc/messages.js';
import type { CorralResponse } from './response.js';

/** Per-connection state, kept on the socket itself (no lookups on the request path). */
interface ConnState {
  busy: number;
  /** Requests answered on this connection so far. */
  served: number;
  idleSince: number;
  /** Requests begun on it; from the second one on it is a kept (keep-alive) connection. */
  requests: number;
  /** Told to close after its current response, to rebalance. */
  shed: boolean;
  /** When a drain sent our FIN; a peer that has not closed its end soon after is cut. */
  finAt: number;
}
const kConn = Symbol('corral.conn');
type TrackedSocket = Socket & { [kConn]?: ConnState };

/**
 * During a drain an idle keep-alive connection is closed once it has been idle this long: a
 * client reusing it sooner gets its answer with Connection: close instead of a closed socket.
 */
const DRAIN_IDLE_MS = 1000;
/**
 * A connection that has not carried a request yet waits longer: its request may already be in
 * the kernel's buffer while this worker is busy, and closing a socket with unread data resets
 * it. Only a connection silent this long (a pre-connect that was never used) is closed.
 */
const DRAIN_FRESH_MS = 2000;
/**
 * How long a peer may take to close its end after our FIN. http.Server sockets are half-open
 * (allowHalfOpen), so a client that never closes would otherwise keep the connection, and
 * with it the drain, open until the graceful timeout: one silent client must not hold a stop.
 */
const DRAIN_FIN_MS = 1000;
const DRAIN_POLL_MS = 50;

/**
 * Tracks the worker's connections and requests so a drain can finish in-flight requests,
 * tell keep-alive clients to go elsewhere (Connection: close) and close idle connections
 * without racing a client that is about to reuse one.
 */
export class ConnectionTracker {
  private readonly sockets = new Set<TrackedSocket>();
  /** In-flight responses, oldest first (a Set keeps insertion order). */
  private readonly inflight = new Set<CorralResponse>();
  private draining = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private onEmpty: (() => void) | undefined;
  /** Open connections that carried a second request (churn never counts). */
  private kept = 0;
  private keptChanged = true;
  /** Kept connections answered with Connection: close and not closed yet. */
  private shedding = 0;
  /** How many more kept connections to shed, from the master's last verdict. */
  private shedBudget = 0;
  /**
   * Called for a response its connection closed under before it was ended (the client went
   * away, or the app destroyed it). One listener per connection does this, none per request.
   */
  onAbandoned: ((res: CorralResponse) => void) | undefined;

  attach(server: Server): void {
    server.on('connection', (socket: TrackedSocket) => {
      const conn: ConnState = { busy: 0, served: 0, idleSince: performance.now(), requests: 0, shed: false, finAt: 0 };
      socket[kConn] = conn;
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (conn.busy > 0) {
          for (const res of this.inflight) {
            if (res.req.socket !== socket) continue;
            this.done(res);
            this.onAbandoned?.(res);
          }
        }
        if (conn.requests >= 2) {
          this.kept--;
          this.keptChanged = true;
        }
        if (conn.shed) this.shedding--;
        this.checkEmpty();
      });
    });
  }

  /** A request starts (before the app sees it). */
  begin(res: CorralResponse): void {
    this.inflight.add(res);
    const conn = (res.req.socket as TrackedSocket)[kConn];
    if (conn) {
      conn.busy++;
      if (++conn.requests === 2) {
        this.kept++;
        this.keptChanged = true;
      }
      if (this.shedBudget > 0 && conn.requests >= 2 && !conn.shed && !this.draining) {
        // Over its share: this client reconnects, and the new connection goes to whichever
        // worker accepts first.
        conn.shed = true;
        this.shedding++;
        this.shedBudget--;
        res.setHeader('Connection', 'close');
      }
    }
    if (this.draining) res.setHeader('Connection', 'close');
  }

  /** The kept-connection count when it changed since the last call, else undefined. */
  keptIfChanged(): number | undefined {
    if (!this.keptChanged) return undefined;
    this.keptChanged = false;
    return this.kept;
  }

  /**
   * The master's verdict from one snapshot of every worker's count: a worker over its limit
   * sheds its excess, never more than it has.
   */
  balance(limit: number | null): void {
    this.shedBudget = limit === null ? 0 : Math.max(0, this.kept - this.shedding - limit);
  }

  /** Its response is ended by the app, or its connection is gone; a second call does nothing. */
  done(res: CorralResponse): void {
    if (!this.inflight.delete(res)) return;
    const socket = res.req.socket as TrackedSocket;
    const conn = socket[kConn];
    if (conn) {
      conn.busy--;
      conn.served++;
      conn.idleSince = performance.now();
      // While draining, a connection is not ended here: a response that told the client
      // "Connection: close" has Node close the socket, and one that went out as keep-alive
      // (it had begun before the drain) may be followed by the client's next request at any
      // moment; closeIdle() ends it once it has stayed idle.
    }
    this.checkEmpty();
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** The oldest request still being served. */
  oldest(): BusyWith | undefined {
    for (const res of this.inflight) return { method: res.req.method ?? '?', url: res.req.url ?? '', forMs: Math.round(performance.now() - res.startedAt) };
    return undefined;
  }

  /** Starts a drain; resolves when every connection is closed. */
  drain(): Promise<void> {
    this.draining = true;
    for (const res of this.inflight) if (!res.headersSent) res.setHeader('Connection', 'close');
    this.closeIdle();
    this.drainTimer = setInterval(() => this.closeIdle(), DRAIN_POLL_MS);
    return new Promise((resolve) => {
      this.onEmpty = resolve;
      this.checkEmpty();
    });
  }

  /** Fast stop: every connection is cut now. */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private closeIdle(): void {
    const now = performance.now();
    for (const socket of this.sockets) {
      const conn = socket[kConn];
      if (!conn || conn.busy > 0) continue;
      if (conn.finAt > 0) {
        // Bytes still queued: a response is still going out to a slow reader (graceful-timeout bounds it).
        if (now - conn.finAt >= DRAIN_FIN_MS && socket.writableLength === 0) socket.destroy();
      } else if (now - conn.idleSince >= (conn.served > 0 ? DRAIN_IDLE_MS : DRAIN_FRESH_MS)) {
        conn.finAt = now;
        socket.end();
      }
    }
  }

  private checkEmpty(): void {
    if (!this.draining || this.sockets.size > 0 || this.inflight.size > 0 || !this.onEmpty) return;
    clearInterval(this.drainTimer);
    const done = this.onEmpty;
    this.onEmpty = undefined;
    done();
  }
}
