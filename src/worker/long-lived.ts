import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DrainReason, LongLivedCloser, LongLivedFigures, LongLivedKind, WorkerSpec } from '../ipc/messages.js';
import { LONG_LIVED_BUCKETS } from '../metrics/definitions.js';
import { connectionOf, type Connection } from './connection.js';
import type { ConnectionTracker } from './connections.js';
import { requestId } from './request-id.js';
import type { RequestLog } from './request-log.js';
import type { CorralResponse, StreamHook } from './response.js';
import { CLOSE_ABNORMAL, closeFrame, FrameScanner } from './ws-frames.js';

type Settings = WorkerSpec['longLived'];

/** What a worker runs with when nothing says otherwise: the settings' defaults. */
const DEFAULTS: Settings = { spreadMs: 5000, closeReload: 1012, closeStop: 1001 };

/** How long a client has to answer corral's close frame before its socket is destroyed (ms). */
const CLOSE_WAIT_MS = 1000;

/** The reason text of corral's close frames (the code says the same to programs). */
const RELOAD_TEXT = 'service restart';
const STOP_TEXT = 'going away';

export interface LongLivedOptions {
  settings?: Settings;
  /** Told when a connection is upgraded and when a response turns into an event stream. */
  tracker?: ConnectionTracker;
  closeWaitMs?: number;
  /** The drain schedule's clock (ms) and its random source in [0, 1); tests replace them. */
  now?: () => number;
  random?: () => number;
  /** The drain schedule's timer; tests replace it. */
  setTimer?: (fn: () => void, ms: number) => { unref?(): unknown } | unknown;
  clearTimer?: (t: unknown) => void;
}

type WriteFn = (this: Socket, data: unknown, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void;
type WritevFn = (this: Socket, chunks: Array<{ chunk: unknown; encoding: BufferEncoding }>, cb: (err?: Error | null) => void) => void;
type PushFn = (this: Socket, chunk: unknown, encoding?: BufferEncoding) => boolean;

function bytesOf(data: unknown, encoding: BufferEncoding | string | undefined): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data, (encoding as BufferEncoding) || 'utf8');
  return new Uint8Array(0);
}

/** One long-lived connection while it is open. */
abstract class Entry {
  abstract readonly kind: LongLivedKind;
  /** Who ended it, when corral acted first (its polite close, its cut). */
  closer: LongLivedCloser | undefined;
  closed = false;
  constructor(readonly conn: Connection | undefined, readonly since: number) {}
}

/** An upgraded socket: a WebSocket (or another protocol the app took over). */
class Upgraded extends Entry {
  readonly kind = 'websocket' as const;
  readonly inFrames: FrameScanner | undefined;
  readonly outFrames: FrameScanner | undefined;
  /** The status of the response head the app wrote (101), 0 until its status line went out. */
  status = 0;
  /** Whether the response head is written ("\r\n\r\n" seen): what follows are frames. */
  headDone = false;
  private headEnd = 0;
  private statusLine = '';
  bytesIn = 0;
  bytesOut = 0;
  /** Which close frame went by first: the client's ('in') or the server's ('out'). */
  firstClose: 'in' | 'out' | undefined;
  /** The peer closed its end (FIN) while ours was still open. */
  peerEndedFirst = false;
  /** Cut by corral: logged as 1006 whatever went by. */
  cut = false;

  constructor(readonly req: IncomingMessage, readonly socket: Socket, conn: Connection | undefined, since: number) {
    super(conn, since);
    const ws = /^\s*websocket\s*$/i.test(String(req.headers.upgrade ?? ''));
    if (ws) {
      this.inFrames = new FrameScanner();
      this.outFrames = new FrameScanner();
    }
  }

  get isWebSocket(): boolean {
    return this.inFrames !== undefined;
  }

  received(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    const scan = this.inFrames;
    if (scan && !scan.done) {
      scan.feed(chunk);
      if (scan.closeCode !== undefined) this.firstClose ??= 'in';
    }
  }

  sent(chunk: Uint8Array): void {
    let from = 0;
    if (!this.headDone) {
      // The response head: its status line, then up to its blank line.
      for (; from < chunk.length && !this.headDone; from++) {
        const c = chunk[from]!;
        if (this.status === 0) {
          if (c === 10) this.status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(this.statusLine)?.[1] ?? 0) || 499;
          else if (this.statusLine.length < 64) this.statusLine += String.fromCharCode(c);
        }
        this.headEnd = c === 10 ? (this.headEnd === 1 || this.headEnd === 3 ? this.headEnd + 1 : 0) : c === 13 ? (this.headEnd === 0 || this.headEnd === 2 ? this.headEnd + 1 : 1) : 0;
        if (this.headEnd === 4) this.headDone = true;
      }
      if (from >= chunk.length) return;
    }
    this.bytesOut += chunk.length - from;
    const scan = this.outFrames;
    if (scan && !scan.done) {
      scan.feed(from > 0 ? chunk.subarray(from) : chunk);
      if (scan.closeCode !== undefined) this.firstClose ??= 'out';
    }
  }

  /** A close frame went by, or either end is closing: nothing for corral to start. */
  get closing(): boolean {
    const s = this.socket;
    return this.firstClose !== undefined || s.destroyed || s.writableEnded || s.readableEnded;
  }

  /** The code its line carries: the client's, else the one sent to it, else 1006. */
  get closeCode(): number | undefined {
    if (!this.isWebSocket || this.status !== 101) return undefined;
    if (this.cut) return CLOSE_ABNORMAL;
    return this.inFrames!.closeCode ?? this.outFrames!.closeCode ?? CLOSE_ABNORMAL;
  }

  whoClosed(hadError: boolean): LongLivedCloser {
    if (this.closer) return this.closer;
    if (this.firstClose === 'in') return 'client';
    if (this.firstClose === 'out') return 'app';
    if (hadError) return 'forced';
    return this.peerEndedFirst ? 'client' : 'app';
  }
}

/** A Server-Sent Events response. */
class Stream extends Entry {
  readonly kind = 'stream' as const;
  constructor(readonly res: CorralResponse, readonly socket: Socket | null, conn: Connection | undefined) {
    super(conn, res.startedAt);
  }

  whoClosed(): LongLivedCloser {
    if (this.closer) return this.closer;
    if (this.res.writableEnded) return 'app';
    return this.socket?.errored ? 'forced' : 'client';
  }
}

/** One close corral will make during a drain, at `at` on the schedule's clock. */
interface Due {
  at: number;
  entry: Entry;
}

const NB = LONG_LIVED_BUCKETS.length;

/**
 * The worker's long-lived connections: upgraded sockets (WebSockets) and Server-Sent Event
 * streams, a class of their own beside ordinary requests. They are counted, aged, logged
 * when they close, and ended politely by a drain (docs/long-lived.md).
 *
 * Sockets are observed, never driven: what the client sends is seen as it enters the
 * socket's read buffer (its `push`), whether or not the app has read it yet, so corral
 * never changes a socket's flow (a 'data' listener would resume a socket the app paused);
 * what goes out is seen where the socket hands it to the kernel (`_write`, `_writev`), in
 * order. Only frame headers are read (ws-frames.ts).
 */
export class LongLived {
  private readonly settings: Settings;
  private readonly tracker: ConnectionTracker | undefined;
  private readonly closeWaitMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly setTimer: NonNullable<LongLivedOptions['setTimer']>;
  private readonly clearTimer: NonNullable<LongLivedOptions['clearTimer']>;
  private requests: RequestLog | undefined;
  private count: () => void = () => {};
  private readonly open = new Set<Entry>();
  private websockets = 0;
  private streams = 0;
  /** Closes by kind and closer. */
  private readonly closes = new Map<string, number>();
  /** Per kind: NB bucket counts, +Inf, then the sum of seconds. */
  private readonly durations = new Map<LongLivedKind, Float64Array>();
  /** Set when the drain starts: the moment (schedule clock), and the close frame corral sends. */
  private drainStart: number | undefined;
  private frame: Buffer | undefined;
  /** The drain's closes, sorted by time; those before `next` are done. */
  private due: Due[] = [];
  private next = 0;
  private timer: unknown;

  constructor(opts: LongLivedOptions = {}) {
    this.settings = opts.settings ?? DEFAULTS;
    this.tracker = opts.tracker;
    this.closeWaitMs = opts.closeWaitMs ?? CLOSE_WAIT_MS;
    this.now = opts.now ?? (() => performance.now());
    this.random = opts.random ?? Math.random;
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
  }

  /**
   * Where WebSocket lines go, and the request counter (max-requests) an upgrade counts in:
   * an upgrade never reaches the request handler, so it is counted here, once.
   */
  wire(requests: RequestLog, count: () => void): void {
    this.requests = requests;
    this.count = count;
  }

  /**
   * An Upgrade request is about to be handed to the app's upgrade handler (call this before
   * the app sees it, with the bytes Node read past the request's head). From here on corral
   * tracks the socket as an upgraded one: counted as a request, logged when it closes, ended
   * by a drain.
   */
  upgraded(req: IncomingMessage, socket: Duplex, head?: Uint8Array): void {
    const s = socket as Socket;
    const conn = connectionOf(s);
    // Told twice about one socket (an app's own 'upgrade' listener beside corral's): once counts.
    if (conn?.longLived === 'websocket') return;
    const since = conn?.began || performance.now();
    if (conn) {
      conn.began = 0;
      conn.longLived = 'websocket';
      conn.longSince = since;
      this.tracker?.upgraded(conn);
    }
    this.count();
    const e = new Upgraded(req, s, conn, since);
    this.open.add(e);
    this.websockets++;
    if (head && head.length > 0) e.received(head);
    observe(s, e, head === undefined);
    s.once('end', () => {
      e.peerEndedFirst = !s.writableEnded;
    });
    s.once('close', (hadError: boolean) => this.upgradedClosed(e, hadError));
    if (this.drainStart !== undefined) this.scheduleLate(e);
  }

  /** The response hook: this response is an event stream (response.ts sees its head). */
  readonly stream: StreamHook = (res) => {
    const socket = res.req.socket as Socket | null;
    const conn = connectionOf(socket);
    this.tracker?.streamStarted(res);
    if (conn) {
      conn.longLived = 'stream';
      conn.longSince = res.startedAt;
    }
    const e = new Stream(res, socket, conn);
    this.open.add(e);
    this.streams++;
    res.once('close', () => this.streamClosed(e));
    if (this.drainStart !== undefined) this.scheduleLate(e);
  };

  /**
   * The worker drains (the app has just been told, through its signal): whatever is still
   * open is ended by corral at a moment drawn uniformly in [0, spreadMs] from now, unless the
   * app or the client has closed it, or begun to, by then.
   */
  drain(reason: DrainReason): void {
    if (this.drainStart !== undefined) return;
    const stop = reason === 'shutdown';
    this.frame = closeFrame(stop ? this.settings.closeStop : this.settings.closeReload, stop ? STOP_TEXT : RELOAD_TEXT);
    const start = this.now();
    this.drainStart = start;
    this.due = spread([...this.open], start, this.settings.spreadMs, this.random);
    this.next = 0;
    this.arm();
  }

  /**
   * The worker's time is up: every long-lived connection still open is cut now (its line
   * says 1006 for a WebSocket, the status sent and the bytes so far for a stream; the close
   * counts as 'forced'). The lines are written as the sockets close.
   */
  cut(): void {
    this.clearTimer(this.timer);
    this.due = [];
    for (const e of this.open) {
      if (e.closed) continue;
      e.closer = 'forced';
      if (e instanceof Upgraded) {
        e.cut = true;
        e.socket.destroy();
      } else if (e instanceof Stream) {
        e.socket?.destroy();
        e.res.destroy();
      }
    }
  }

  /** How many are open now. */
  get size(): number {
    return this.open.size;
  }

  /** What the heartbeat reports (docs/metrics.md). */
  figures(): LongLivedFigures {
    const closed: LongLivedFigures['closed'] = [];
    for (const [key, n] of this.closes) {
      const [kind, by] = key.split(':') as [LongLivedKind, LongLivedCloser];
      closed.push([kind, by, n]);
    }
    const durations: LongLivedFigures['durations'] = [];
    for (const [kind, h] of this.durations) durations.push([kind, Array.from(h.subarray(0, NB + 1)), h[NB + 1]!]);
    return { websockets: this.websockets, streams: this.streams, closed, durations };
  }

  private upgradedClosed(e: Upgraded, hadError: boolean): void {
    if (e.closed) return;
    e.closed = true;
    this.open.delete(e);
    this.websockets--;
    const conn = e.conn;
    const status = e.status || 499;
    this.requests?.tunnel({
      req: e.req, status, bytesOut: e.bytesOut, bytesIn: e.bytesIn, startedAt: e.since,
      remoteAddr: conn ? conn.addr : e.socket.remoteAddress, peerAddr: conn ? conn.peer : e.socket.remoteAddress, requestId: requestId(e.req), wsClose: e.closeCode,
    });
    // An upgrade the app refused (a 4xx head) or never answered is a request, not a WebSocket.
    if (status === 101) this.record('websocket', e.whoClosed(hadError), e.since);
  }

  private streamClosed(e: Stream): void {
    if (e.closed) return;
    e.closed = true;
    this.open.delete(e);
    this.streams--;
    const conn = e.conn;
    if (conn && conn.longLived === 'stream') conn.longLived = undefined;
    this.record('stream', e.whoClosed(), e.since);
  }

  private record(kind: LongLivedKind, by: LongLivedCloser, since: number): void {
    const key = kind + ':' + by;
    this.closes.set(key, (this.closes.get(key) ?? 0) + 1);
    let h = this.durations.get(kind);
    if (!h) {
      h = new Float64Array(NB + 2);
      this.durations.set(kind, h);
    }
    const seconds = Math.max(0, (performance.now() - since) / 1000);
    let i = 0;
    while (i < NB && seconds > LONG_LIVED_BUCKETS[i]!) i++;
    h[i]!++;
    h[NB + 1]! += seconds;
  }

  /** One that became long-lived during the drain: its moment is drawn in what is left of the window. */
  private scheduleLate(e: Entry): void {
    const at = Math.max(this.now(), this.drainStart! + this.random() * this.settings.spreadMs);
    const due = this.due;
    let lo = this.next;
    let hi = due.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (due[mid]!.at <= at) lo = mid + 1;
      else hi = mid;
    }
    due.splice(lo, 0, { at, entry: e });
    this.arm();
  }

  /** One timer, for the next close due. */
  private arm(): void {
    this.clearTimer(this.timer);
    this.timer = undefined;
    const first = this.due[this.next];
    if (!first) return;
    this.timer = this.setTimer(this.walk, Math.max(0, first.at - this.now()));
  }

  private readonly walk = (): void => {
    this.timer = undefined;
    const now = this.now();
    const due = this.due;
    while (this.next < due.length && due[this.next]!.at <= now) this.endPolitely(due[this.next++]!.entry);
    if (this.next > 1024 && this.next * 2 > due.length) {
      this.due = due.slice(this.next);
      this.next = 0;
    }
    this.arm();
  };

  private endPolitely(e: Entry): void {
    if (e.closed) return;
    if (e instanceof Stream) {
      const res = e.res;
      if (res.writableEnded || res.destroyed) return;
      e.closer = 'drain';
      // The chunked terminator: the client reads the end of the body, not a reset.
      res.end();
      return;
    }
    const u = e as Upgraded;
    if (u.closing) return;
    u.closer = 'drain';
    const s = u.socket;
    // A complete frame in one write: the app's library writes each of its frames within one
    // synchronous call, so this one cannot land inside another.
    if (u.isWebSocket && u.headDone && u.status === 101) s.write(this.frame!);
    else s.end();
    const timer = setTimeout(() => s.destroy(), this.closeWaitMs);
    timer.unref();
    s.once('close', () => clearTimeout(timer));
  }
}

/**
 * The drain's closes: one moment for each entry, uniform in [start, start + spreadMs],
 * sorted (0: all at `start`).
 */
export function spread<T>(entries: T[], start: number, spreadMs: number, random: () => number): Array<{ at: number; entry: T }> {
  const due = entries.map((entry) => ({ at: start + (spreadMs > 0 ? random() * spreadMs : 0), entry }));
  due.sort((a, b) => a.at - b.at);
  return due;
}

/**
 * Counts and scans what goes through the socket each way, without changing how it flows.
 * `headUnknown`: the caller did not pass the bytes read past the request's head; WebSocket
 * libraries put them back in front of the socket (`unshift`) before anything else arrives,
 * so a first unshift before any read is taken for them.
 */
function observe(socket: Socket, e: Upgraded, headUnknown: boolean): void {
  const s = socket as unknown as { push: PushFn; unshift: PushFn; _write: WriteFn; _writev: WritevFn };
  const push = s.push;
  let read = false;
  s.push = function (chunk, encoding) {
    if (chunk !== null && chunk !== undefined) {
      read = true;
      e.received(bytesOf(chunk, encoding));
    }
    return push.call(this, chunk, encoding);
  };
  if (headUnknown) {
    const unshift = s.unshift;
    s.unshift = function (chunk, encoding) {
      if (!read && chunk !== null && chunk !== undefined) {
        read = true;
        e.received(bytesOf(chunk, encoding));
      }
      return unshift.call(this, chunk, encoding);
    };
  }
  const write = s._write;
  s._write = function (data, encoding, cb) {
    e.sent(bytesOf(data, encoding));
    return write.call(this, data, encoding, cb);
  };
  const writev = s._writev;
  s._writev = function (chunks, cb) {
    for (const c of chunks) e.sent(bytesOf(c.chunk, c.encoding));
    return writev.call(this, chunks, cb);
  };
}
