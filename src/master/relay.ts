/**
 * The master's side of @socket.io/cluster-adapter: what that package's `setupPrimary()` does
 * in a node:cluster primary, done between corral's workers (which are not cluster workers,
 * so an app does not call `setupPrimary()`: there is no cluster primary to set up).
 *
 * The protocol, as the adapter's worker side speaks it over `process.send`:
 *  - every message carries `source: '_sio_adapter'`, the sending adapter's `uid` (one per
 *    namespace per worker), its namespace `nsp` and a numeric `type`;
 *  - a request or a broadcast (heartbeats, BROADCAST, SOCKETS_JOIN, FETCH_SOCKETS,
 *    SERVER_SIDE_EMIT, ...) goes to every other worker;
 *  - a response (FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT_RESPONSE, BROADCAST_CLIENT_COUNT,
 *    BROADCAST_ACK) carries `requesterUid` and goes to the one worker that owns that uid,
 *    learnt from the messages it sent. (setupPrimary sends the last two to everyone, who
 *    drop them by request id; sending them to the requester alone is the same, with fewer
 *    writes.) A response whose requester is gone is dropped.
 *
 * What this adds: when a worker exits, the others are told at once that each of its adapters
 * closed (ADAPTER_CLOSE, as an adapter says itself when the app closes it), so a pending
 * `fetchSockets()` or acknowledged `serverSideEmit()` stops waiting for a worker that will
 * never answer, instead of waiting for the adapter's heartbeat timeout.
 *
 * A message is forwarded as the object the IPC channel parsed, unchanged: each write
 * serializes it once, as `worker.send()` does for setupPrimary. Writes a worker has not read
 * yet wait in the master; a burst is fine (a busy worker catches up), but a worker that has
 * not read one of them for STALL_MS (its event loop is blocked), or has MAX_QUEUED waiting,
 * misses the next ones until it reads again, so no worker can grow the master without bound.
 */

/** The marker the adapter puts in `source`. */
const SOURCE = '_sio_adapter';
/** ADAPTER_CLOSE in socket.io-adapter's MessageType. */
const ADAPTER_CLOSE = 13;
/** Relayed messages a worker may have waiting in its channel before the next ones are dropped. */
const MAX_QUEUED = 100_000;
/** How long a worker may leave relayed messages unread before the next ones are dropped (ms). */
const STALL_MS = 5000;
/** Adapters (namespaces) remembered per worker: a bound, not a limit an app should meet. */
const MAX_UIDS = 1024;
/** The longest uid remembered (the adapter's are 16 hex digits). */
const MAX_UID_LENGTH = 256;

/** A message of @socket.io/cluster-adapter, as far as the relay reads it. */
export interface AdapterMessage {
  source: typeof SOURCE;
  uid?: unknown;
  nsp?: unknown;
  requesterUid?: unknown;
  type?: unknown;
}

/** The adapter's marker, and nothing else, makes a message the adapter's. */
export function isAdapterMessage(msg: unknown): msg is AdapterMessage {
  return typeof msg === 'object' && msg !== null && (msg as { source?: unknown }).source === SOURCE;
}

/** A worker as the relay sees it: a channel it can write to. */
export interface RelayPeer {
  readonly name: string;
  /** Still has an IPC channel. */
  readonly connected: boolean;
  /** Writes a message; `done` is called once it is written or failed. False: not sent at all. */
  relay(msg: AdapterMessage, done: () => void): boolean;
}

interface PeerState {
  /** uid -> namespace of each adapter this worker has. */
  readonly uids: Map<string, string>;
  /** Relayed messages handed to the channel and not yet written. */
  queued: number;
  /** When a write last completed, or the first of those waiting was handed over. */
  progressAt: number;
  /** Messages dropped since the worker last read. */
  dropped: number;
}

export class AdapterRelay {
  readonly #peers = new Map<RelayPeer, PeerState>();
  readonly #owners = new Map<string, RelayPeer>();

  constructor(
    private readonly warn: (line: string) => void,
    /** Monotonic milliseconds. */
    private readonly now: () => number,
  ) {}

  /** A new worker: it receives what the others send from now on. */
  join(peer: RelayPeer): void {
    this.#peers.set(peer, { uids: new Map(), queued: 0, progressAt: 0, dropped: 0 });
  }

  /**
   * A worker is gone: nothing more is sent to it, responses to it are dropped, and the others
   * hear that each of its adapters closed.
   */
  leave(peer: RelayPeer): void {
    const state = this.#peers.get(peer);
    if (!state) return;
    this.#peers.delete(peer);
    for (const [uid, nsp] of state.uids) {
      if (this.#owners.get(uid) === peer) this.#owners.delete(uid);
      this.toOthers(peer, { source: SOURCE, type: ADAPTER_CLOSE, uid, nsp });
    }
  }

  /** A message `from` sent with the adapter's marker. Whatever its shape, this never throws. */
  relay(from: RelayPeer, msg: AdapterMessage): void {
    const { uid, requesterUid } = msg;
    const state = this.#peers.get(from);
    if (state && typeof uid === 'string' && !state.uids.has(uid) && uid.length <= MAX_UID_LENGTH && state.uids.size < MAX_UIDS) {
      state.uids.set(uid, typeof msg.nsp === 'string' ? msg.nsp : '/');
      this.#owners.set(uid, from);
    }
    if (requesterUid === undefined) return this.toOthers(from, msg);
    const to = typeof requesterUid === 'string' ? this.#owners.get(requesterUid) : undefined;
    if (to && to !== from) this.send(to, msg);
  }

  private toOthers(from: RelayPeer, msg: AdapterMessage): void {
    for (const peer of this.#peers.keys()) if (peer !== from) this.send(peer, msg);
  }

  private send(peer: RelayPeer, msg: AdapterMessage): void {
    const state = this.#peers.get(peer);
    if (!state || !peer.connected) return;
    const now = this.now();
    if (state.queued > 0 && (state.queued >= MAX_QUEUED || now - state.progressAt > STALL_MS)) {
      if (state.dropped++ === 0) {
        const why = state.queued >= MAX_QUEUED ? `${MAX_QUEUED} Socket.IO adapter messages waiting` : `none of ${state.queued} Socket.IO adapter messages read for ${STALL_MS / 1000} s`;
        this.warn(`${peer.name} does not read its channel (${why}): the next ones are dropped until it does`);
      }
      return;
    }
    if (state.dropped > 0) {
      this.warn(`${peer.name} reads its channel again; ${state.dropped} Socket.IO adapter message(s) were dropped meanwhile`);
      state.dropped = 0;
    }
    if (state.queued === 0) state.progressAt = now;
    state.queued++;
    const done = () => {
      state.queued--;
      state.progressAt = this.now();
    };
    let sent = false;
    try {
      sent = peer.relay(msg, done);
    } catch {
      // the channel went away meanwhile: the same as not sent
    }
    if (!sent) state.queued--;
  }
}
