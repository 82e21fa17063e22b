/**
 * The kernel's accept queue of each listening socket, read from /proc without a native
 * dependency. A TCP socket's LISTEN row in /proc/net/tcp{,6} carries the queue's current
 * length in `rx_queue` (sk_ack_backlog); its row is found by the socket's inode, which
 * readlink(/proc/self/fd/N) gives as `socket:[INODE]`. The row's `tx_queue` is always 0 for
 * a listener, so the limit is the backlog passed to listen(2), capped by somaxconn as the
 * kernel does. Unix sockets have no such row: /proc/net/unix shows no queue, and only
 * sock_diag netlink (what `ss -xl` uses) does, which Node cannot speak; they report none.
 */
import { closeSync, openSync, readFileSync, readSync, readlinkSync } from 'node:fs';

export interface QueueFigures {
  /** Connections waiting to be accepted. */
  length: number;
  limit: number;
}

const LISTEN_STATE = '0A';

/**
 * The LISTEN rows of a /proc/net/tcp or tcp6 text: inode -> accept-queue length.
 * Columns: sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ...
 */
export function parseProcNetTcp(text: string, into = new Map<number, number>()): Map<number, number> {
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN_STATE) continue;
    const queues = f[4]!.split(':');
    const rx = parseInt(queues[1] ?? '', 16);
    const inode = Number(f[9]);
    if (Number.isFinite(rx) && Number.isInteger(inode) && inode > 0) into.set(inode, rx);
  }
  return into;
}

/**
 * Reads the leading LISTEN rows of a /proc/net/tcp file. The kernel lists the listening
 * hash before established connections (tcp_seq_start in net/ipv4/tcp_ipv4.c), so reading
 * stops at the first other row: a busy host's table of connections is never read whole.
 */
function readListenRows(path: string, into: Map<number, number>): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return; // no IPv6, or no /proc
  }
  try {
    const buf = Buffer.alloc(65536);
    let text = '';
    let header = true;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      text += buf.toString('latin1', 0, n);
      const lastNl = text.lastIndexOf('\n');
      if (lastNl < 0) continue;
      const complete = text.slice(0, lastNl);
      text = text.slice(lastNl + 1);
      let rows = complete.split('\n');
      if (header) {
        rows = rows.slice(1);
        header = false;
      }
      const firstOther = rows.findIndex((r) => r.trim() !== '' && r.trim().split(/\s+/)[3] !== LISTEN_STATE);
      parseProcNetTcp((firstOther < 0 ? rows : rows.slice(0, firstOther)).join('\n'), into);
      if (firstOther >= 0) return;
    }
    parseProcNetTcp(text, into);
  } finally {
    closeSync(fd);
  }
}

/** The inode of the socket open as fd in this process, or undefined if it is not a socket. */
export function socketInode(fd: number): number | undefined {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function somaxconn(): number {
  try {
    const n = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 4096;
  } catch {
    return 4096;
  }
}

/** Reads the queues of the given listeners; a listener without figures (unix) is absent. */
export class ListenQueues {
  private readonly inodes = new Map<number, number | undefined>();

  constructor(private readonly procRoot = '/proc') {}

  read(listeners: ReadonlyArray<{ label: string; fd: number }>, backlog: number): Map<string, QueueFigures> {
    const out = new Map<string, QueueFigures>();
    if (listeners.length === 0) return out;
    const rows = new Map<number, number>();
    readListenRows(`${this.procRoot}/net/tcp`, rows);
    readListenRows(`${this.procRoot}/net/tcp6`, rows);
    const limit = Math.min(backlog, somaxconn());
    for (const l of listeners) {
      if (!this.inodes.has(l.fd)) this.inodes.set(l.fd, socketInode(l.fd));
      const inode = this.inodes.get(l.fd);
      const length = inode === undefined ? undefined : rows.get(inode);
      if (length !== undefined) out.set(l.label, { length, limit });
    }
    return out;
  }
}
