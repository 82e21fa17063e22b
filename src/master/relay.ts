/**
 * The master's side of @socket.io/cluster-adapter: what that package's `setupPrimary()` does
 * in a node:cluster primary, done between corral's workers (which are not cluster workers,
 * so an app must not call `setupPrimary()`: there is no cluster primary to set up).
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
 * serializes it once, as `worker.send()` does for setupPrimary. A worker whose channel has
 * more than MAX_QUEUED relayed messages not yet written (it is not reading) misses the next
 * ones until it catches up, so one stuck worker cannot grow the master without bound.
 */

/** The marker the adapter puts in `source`. */
const SOURCE = '_sio_adapter';
/** ADAPTER_CLOSE in socket.io-adapter's MessageType. */
const ADAPTER_CLOSE = 13;
/** Relayed messages a worker may have waiting in its channel before the next ones are dropped. */
const MAX_QUEUED = 10_000;
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
  /** Messages dropped since the channel last caught up. */
  dropped: number;
}

export class AdapterRelay {
  readonly #peers = new Map<RelayPeer, PeerState>();
  readonly #owners = new Map<string, RelayPeer>();

  constructor(private readonly warn: (line: string) => void) {}

  /** A new worker: it receives what the others send from now on. */
  join(peer: RelayPeer): void {
    this.#peers.set(peer, { uids: new Map(), queued: 0, dropped: 0 });
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
    if (state.queued >= MAX_QUEUED) {
      if (state.dropped++ === 0) this.warn(`${peer.name} does not read its channel (${MAX_QUEUED} Socket.IO adapter messages waiting): the next ones are dropped until it catches up`);
      return;
    }
    state.queued++;
    const done = () => {
      state.queued--;
      if (state.queued === 0 && state.dropped > 0) {
        this.warn(`${peer.name} reads its channel again; ${state.dropped} Socket.IO adapter message(s) were dropped meanwhile`);
        state.dropped = 0;
      }
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
