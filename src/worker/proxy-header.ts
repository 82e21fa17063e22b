import type { Socket } from 'node:net';
import { compile } from 'proxy-addr';
import { parseProxyHeader, V2_MAX, type ProxyHeader } from '../listeners/proxy-protocol.js';
import type { ProxyRejectReason } from '../ipc/messages.js';
import type { Logger } from '../logging/logger.js';


/** How often rejections are logged: the first at once, the rest counted into one line per interval. */
const LOG_INTERVAL_MS = 60_000;

/**
 * Counts the connections closed for want of a valid PROXY header and logs them without
 * letting a scan flood the log: the first rejection is logged when it happens, and those
 * that follow within the interval as one line with their count by reason when it ends.
 */
export class ProxyRejections {
  /** Since the worker started, by reason (sent with its heartbeat). */
  readonly total: Record<ProxyRejectReason, number> = { peer_not_allowed: 0, invalid: 0, timeout: 0, closed: 0 };
  /** Rejections since the worker started. */
  count = 0;
  private pending: Partial<Record<ProxyRejectReason, number>> = {};
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger, private readonly intervalMs = LOG_INTERVAL_MS) {}

  add(reason: ProxyRejectReason, detail: { listener: string; peer: string | undefined; why: string }): void {
    this.total[reason]++;
    this.count++;
    if (this.timer) {
      this.pending[reason] = (this.pending[reason] ?? 0) + 1;
      return;
    }
    this.log.warn({ reason, listener: detail.listener, peer: detail.peer }, `PROXY protocol: closed a connection on ${detail.listener} from ${detail.peer ?? 'a unix socket'}: ${detail.why}`);
    this.timer = setTimeout(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  private flush(): void {
    this.timer = undefined;
    const counts = this.pending;
    this.pending = {};
    const n = Object.values(counts).reduce((a, b) => a + b, 0);
    if (n === 0) return;
    const seconds = Math.round(this.intervalMs / 1000);
    this.log.warn({ counts }, `PROXY protocol: closed ${n} more connection(s) in the last ${seconds} s (${Object.entries(counts).map(([r, c]) => `${r}: ${c}`).join(', ')})`);
    this.timer = setTimeout(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }
}

/** What one listener that expects the PROXY protocol needs to read headers. */
export interface ProxyIntake {
  /** The listener's label, for the log. */
  listener: string;
  /** Whether a TCP peer may send the header (unix-socket peers always may: the socket's file mode admits them). */
  allowed: (addr: string) => boolean;
  /** How long the whole header may take to arrive. */
  timeoutMs: number;
  rejections: ProxyRejections;
}

/** A matcher for the `proxy-protocol-from` allow-list (addresses, CIDRs and proxy-addr's names: loopback, linklocal, uniquelocal). */
export function peerMatcher(list: string[]): (addr: string) => boolean {
  const trust = compile(list);
  return (addr) => trust(addr, 0);
}

/**
 * Reads the PROXY header of a newly accepted socket before any HTTP parser sees it, then
 * calls `ready` with the client address the header gives (undefined: keep the socket's own)
 * and the socket paused with the bytes after the header put back in front of its stream.
 * A peer not allowed, an invalid or missing header, a header not complete within the
 * timeout, or a peer that closes first: the socket is destroyed and the rejection counted.
 */
export function readProxyHeader(socket: Socket, intake: ProxyIntake, ready: (source: ProxyHeader['source']) => void): void {
  const peer = socket.remoteAddress;
  const count = (reason: ProxyRejectReason, why: string): void => intake.rejections.add(reason, { listener: intake.listener, peer, why });
  if (peer !== undefined && !intake.allowed(peer)) {
    socket.destroy();
    return count('peer_not_allowed', `peer ${peer} is not in proxy-protocol-from`);
  }
  let got: Buffer = Buffer.alloc(0);
  const reject = (reason: ProxyRejectReason, why: string): void => {
    finish();
    socket.destroy();
    count(reason, why);
  };
  const onData = (chunk: Buffer): void => {
    got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
    const r = parseProxyHeader(got.length > V2_MAX ? got.subarray(0, V2_MAX) : got);
    if (r.state === 'partial') return;
    if (r.state === 'invalid') return reject('invalid', r.reason);
    finish();
    socket.pause();
    const rest = got.subarray(r.header.length);
    if (rest.length > 0) socket.unshift(rest);
    ready(r.header.source);
  };
  // A peer that connects and closes without a byte (a balancer's plain TCP check) is no rejection.
  const quiet = (): void => {
    finish();
    socket.destroy();
  };
  const onEnd = (): void => (got.length === 0 ? quiet() : reject('closed', 'the peer closed before a complete header'));
  const onError = (): void => (got.length === 0 ? quiet() : reject('closed', 'the connection failed before a complete header'));
  const timer = setTimeout(() => reject('timeout', `no complete header within ${intake.timeoutMs} ms`), intake.timeoutMs);
  function finish(): void {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
  }
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
}
