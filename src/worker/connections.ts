import type { Socket } from 'node:net';
import type { BusyWith } from '../ipc/messages.js';
import { connectionOf, type Connection } from './connection.js';
import type { CorralResponse } from './response.js';

/** How a drain closes connections (ms); tests shorten them. */
interface DrainTimings {
  /**
   * An idle keep-alive connection is closed once it has been idle this long: a client reusing
   * it sooner gets its answer with Connection: close instead of a closed socket.
   */
  idleMs: number;
  /**
   * A connection that has not carried a request yet waits longer: its request may already be
   * in the kernel's buffer while this worker is busy, and closing a socket with unread data
   * resets it. Only a connection silent this long (a pre-connect never used) is closed.
   */
  freshMs: number;
  /**
   * How long a peer may take to close its end after our FIN. http.Server sockets are
   * half-open (allowHalfOpen), so a client that never closes would otherwise keep the
   * connection, and with it the drain, open until the graceful timeout: one silent client
   * must not hold a stop.
   */
  finMs: number;
  pollMs: number;
}

const DRAIN: DrainTimings = { idleMs: 1000, freshMs: 2000, finMs: 1000, pollMs: 50 };

/**
 * Tracks the worker's connections and requests so a drain can finish in-flight requests,
 * tell keep-alive clients to go elsewhere (Connection: close) and close idle connections
 * without racing a client that is about to reuse one.
 */
export class ConnectionTracker {
  private readonly conns = new Set<Connection>();
  /** In-flight responses, oldest first (a Set keeps insertion order). */
  private readonly inflight = new Set<CorralResponse>();
  private readonly timings: DrainTimings;
  private readonly now: () => number;
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
  /** TLS connections accepted whose handshake is not over, and since when: a drain waits for them too. */
  private readonly handshakes = new Map<Socket, number>();

  /** `now`: the clock of the drain's delays (a test moves it by hand). */
  constructor(timings: Partial<DrainTimings> = {}, now: () => number = () => performance.now()) {
    this.timings = { ...DRAIN, ...timings };
    this.now = now;
  }

  /**
   * A TLS connection is accepted; its record is made once the handshake is over (`add`), or
   * never (it failed). `settled` is called then, either way: until it is, a drain waits, as
   * for a connection that has not carried a request yet (a drain closes one still in its
   * handshake after `freshMs`, so a client that connects and says nothing holds no drain).
   */
  handshake(socket: Socket): () => void {
    this.handshakes.set(socket, this.now());
    return () => {
      if (!this.handshakes.delete(socket)) return;
      this.checkEmpty();
    };
  }

  /** A connection is accepted. */
  add(conn: Connection): void {
    conn.idleSince = this.now();
    this.conns.add(conn);
  }

  /**
   * A connection is closed; returns the responses it closed under before they were ended
   * (the client went away, or the app destroyed it), no longer in flight.
   */
  remove(conn: Connection): CorralResponse[] {
    this.conns.delete(conn);
    const abandoned: CorralResponse[] = [];
    if (conn.busy > 0) {
      for (const res of this.inflight) if (res.req.socket === conn.socket) abandoned.push(res);
      for (const res of abandoned) this.done(res);
    }
    if (conn.requests >= 2 && conn.longLived !== 'websocket') {
      this.kept--;
      this.keptChanged = true;
    }
    if (conn.shed) this.shedding--;
    this.checkEmpty();
    return abandoned;
  }

  /**
   * Its connection was upgraded (long-lived.ts has marked it): it carries no more requests,
   * so it is no longer a kept connection balance could move, and no drain closes it as idle.
   */
  upgraded(conn: Connection): void {
    if (conn.requests >= 2) {
      this.kept--;
      this.keptChanged = true;
    }
  }

  /**
   * This response turned out to be an event stream: if balance chose its connection to shed,
   * the choice is undone (its Connection: close removed while the head is not written yet) and
   * the budget goes to the next kept request; a stream may last for hours, shedding it moves
   * nothing. A drain's Connection: close stays.
   */
  streamStarted(res: CorralResponse): void {
    const conn = connectionOf(res.req.socket);
    if (!conn?.shed || this.draining || res.headersSent) return;
    conn.shed = false;
    this.shedding--;
    this.shedBudget++;
    if (res.getHeader('connection') === 'close') res.removeHeader('connection');
  }

  /** A request starts (before the app sees it). */
  begin(res: CorralResponse): void {
    this.inflight.add(res);
    const conn = connectionOf(res.req.socket);
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
    const conn = connectionOf(res.req.socket);
    if (conn) {
      conn.busy--;
      conn.served++;
      conn.idleSince = this.now();
      // While draining, a connection is not ended here: a response that told the client
      // "Connection: close" has Node close the socket, and one that went out as keep-alive
      // (it had begun before the drain) may be followed by the client's next request at any
      // moment; closeIdle() ends it once it has stayed idle.
    }
    this.checkEmpty();
  }

  /** Open connections, long-lived ones included. */
  get connectionCount(): number {
    return this.conns.size;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** The oldest request still being served, event streams aside (they are meant to last). */
  oldest(): BusyWith | undefined {
    for (const res of this.inflight) {
      const conn = connectionOf(res.req.socket);
      if (conn?.longLived === 'stream' && conn.res === res) continue;
      return { method: res.req.method ?? '?', url: res.req.url ?? '', forMs: Math.round(performance.now() - res.startedAt) };
    }
    return undefined;
  }

  /** Starts a drain; resolves when every connection is closed. */
  drain(): Promise<void> {
    this.draining = true;
    for (const res of this.inflight) if (!res.headersSent) res.setHeader('Connection', 'close');
    this.closeIdle();
    this.drainTimer = setInterval(() => this.closeIdle(), this.timings.pollMs);
    return new Promise((resolve) => {
      this.onEmpty = resolve;
      this.checkEmpty();
    });
  }

  /** Fast stop: every connection is cut now. */
  destroyAll(): void {
    for (const conn of this.conns) conn.socket.destroy();
    for (const socket of this.handshakes.keys()) socket.destroy();
  }

  private closeIdle(): void {
    const now = this.now();
    const { idleMs, freshMs, finMs } = this.timings;
    let cut = false;
    for (const [socket, since] of this.handshakes) {
      if (now - since < freshMs) continue;
      this.handshakes.delete(socket);
      socket.destroy();
      cut = true;
    }
    if (cut) this.checkEmpty();
    for (const conn of this.conns) {
      // A refused request's connection closes on its own, within its linger; long-lived ones
      // (upgraded sockets, event streams) are ended by LongLived's drain, never as idle.
      if (conn.busy > 0 || conn.state === 'refused' || conn.longLived !== undefined) continue;
      if (conn.state === 'fin-sent') {
        // Bytes still queued: a response is still going out to a slow reader (graceful-timeout bounds it).
        if (now - conn.finAt >= finMs && conn.socket.writableLength === 0) conn.socket.destroy();
      } else if (now - conn.idleSince >= (conn.served > 0 ? idleMs : freshMs)) {
        conn.state = 'fin-sent';
        conn.finAt = now;
        conn.socket.end();
      }
    }
  }

  private checkEmpty(): void {
    if (!this.draining || this.conns.size > 0 || this.inflight.size > 0 || this.handshakes.size > 0 || !this.onEmpty) return;
    clearInterval(this.drainTimer);
    const done = this.onEmpty;
    this.onEmpty = undefined;
    done();
  }
}
