/**
 * Keeps the master's metrics listener answering however many clients hold connections
 * to it. A liveness probe that cannot get an answer restarts a healthy service, so the
 * listener must not be shut by clients that connect and then say nothing, or trickle a
 * request head a byte at a time, or never read their answer.
 *
 * Node's own guards do not do it: `maxConnections` refuses the NEW connection once the cap
 * is reached, which is the probe's, while the idle ones keep their places; and
 * `headersTimeout`/`requestTimeout` are enforced by a sweep that runs every 30 s
 * (connectionsCheckingInterval), so slow heads hold their places for up to 35 s.
 *
 * Here every connection has one deadline of its own, on its own timer: a complete request
 * head within HEAD_DEADLINE_MS of being accepted or of its last answer (so an idle
 * keep-alive connection lasts as long), and its answer written within ANSWER_DEADLINE_MS.
 * No connection is ever refused: at MAX_HELD, the connection idle the longest (or, if none
 * is idle, the one busy the longest) is closed to make room. A new connection is the last
 * to be closed, and a probe sends its request at once, so it is answered whatever the
 * others do. A flood of new connections faster than the master can accept them is the
 * kernel's accept queue to absorb; that is not something a listener can answer.
 */
import type { Socket } from 'node:net';

/** The time a client has to send a complete request head (a probe needs milliseconds). */
export const HEAD_DEADLINE_MS = 5_000;
/** The time an answer may take to be written out (a scrape of /metrics is a few KB). */
const ANSWER_DEADLINE_MS = 10_000;
/**
 * Connections held at once. Each costs the master a file descriptor and about 14 KB of RSS
 * (3 KB of it V8 heap; measured with 1000 idle, and 1000 with 1 KB of a request head, on
 * Node 20), so 256 bound an attack to about 3.5 MB and leave the descriptors to the
 * workers and listeners, while far more than the few scrapers and probes a master has.
 */
const MAX_HELD = 256;

interface Held {
  /** Requests of this connection being answered. */
  inflight: number;
  timer: NodeJS.Timeout;
}

export class HeldConnections {
  /** In order of the last change of state: the first is the one idle (or busy) the longest. */
  private readonly held = new Map<Socket, Held>();

  constructor(private readonly limits = { max: MAX_HELD, headMs: HEAD_DEADLINE_MS, answerMs: ANSWER_DEADLINE_MS }) {}

  /** A new connection: makes room for it if need be, and gives it a head deadline. */
  accepted(s: Socket): void {
    while (this.held.size >= this.limits.max) this.evict();
    this.held.set(s, { inflight: 0, timer: this.deadline(s, this.limits.headMs) });
    s.once('close', () => this.forget(s));
  }

  /** A request head arrived on s: now its answer has a deadline. */
  requested(s: Socket): void {
    const h = this.held.get(s);
    if (!h) return;
    h.inflight++;
    this.restart(s, h, this.limits.answerMs);
  }

  /** An answer on s is written (or abandoned): once none is left, s waits for a head again. */
  answered(s: Socket): void {
    const h = this.held.get(s);
    if (!h) return;
    h.inflight = Math.max(0, h.inflight - 1);
    if (h.inflight === 0) this.restart(s, h, this.limits.headMs);
  }

  private restart(s: Socket, h: Held, ms: number): void {
    clearTimeout(h.timer);
    h.timer = this.deadline(s, ms);
    this.held.delete(s);
    this.held.set(s, h);
  }

  private deadline(s: Socket, ms: number): NodeJS.Timeout {
    return setTimeout(() => this.close(s), ms).unref();
  }

  private evict(): void {
    let victim: Socket | undefined;
    for (const [s, h] of this.held) {
      victim ??= s;
      if (h.inflight === 0) {
        victim = s;
        break;
      }
    }
    if (victim) this.close(victim);
  }

  private close(s: Socket): void {
    this.forget(s);
    s.destroy();
  }

  private forget(s: Socket): void {
    const h = this.held.get(s);
    if (!h) return;
    clearTimeout(h.timer);
    this.held.delete(s);
  }
}
