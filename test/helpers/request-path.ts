import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createLogger } from '../../src/logging/logger.js';
import { AccessBatch } from '../../src/worker/access-log.js';
import { ConnectionTracker } from '../../src/worker/connections.js';
import { LongLived, type LongLivedOptions } from '../../src/worker/long-lived.js';
import { RequestHandler } from '../../src/worker/request-handler.js';
import { RequestLog } from '../../src/worker/request-log.js';
import { corralServer } from '../../src/worker/server.js';

export type App = (req: IncomingMessage, res: ServerResponse) => unknown;

/** One access record as the json format writes it. */
export interface Record {
  status: number;
  bytes: number;
  duration_ms: number;
  bytes_in?: number;
  ws_close?: number;
  method: string;
  url: string;
  request_id: string;
  remote_addr?: string;
}

/** A worker's request path (tracker, handler, access log, one server) on a loopback port, in this process. */
export class PathServer {
  readonly server: Server;
  readonly tracker: ConnectionTracker;
  /** Access lines as written, one string per write (one per event-loop turn). */
  readonly writes: string[] = [];
  /** Error-log lines (slow requests, handler failures). */
  readonly errors: string[] = [];
  port = 0;

  readonly longLived: LongLived;
  /** Requests counted for max-requests (the handler's onCount). */
  counted = 0;

  /** `http.slowMs`: the slow-request threshold (0, off, unless given). */
  constructor(app: App, tracker = new ConnectionTracker(), http: Partial<HttpSettings> & { slowMs?: number } = {}, longLived: LongLivedOptions = {}) {
    this.tracker = tracker;
    const log = createLogger({ level: 'info', base: {} }, { write: (l: string) => this.errors.push(l) });
    const batch = new AccessBatch({ write: (lines: string) => { this.writes.push(lines); return lines.length; } });
    const requests = new RequestLog({ format: 'json', prefix: '', slowMs: http.slowMs ?? 0, worker: '1.1', log }, batch);
    const handler = new RequestHandler({ app, tracker, log, requests, onCount: (n) => (this.counted = n) });
    this.longLived = new LongLived({ tracker, ...longLived });
    this.longLived.wire(requests, () => handler.countUpgrade());
    this.server = corralServer({ ...HTTP, ...http }, { handler, tracker, requests, batch, longLived: this.longLived });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  records(): Record[] {
    return this.writes.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record);
  }

  /** Waits until `n` access records are written. */
  async waitRecords(n: number, timeoutMs = 5000): Promise<Record[]> {
    await until(() => this.records().length >= n, `${n} access record(s), have ${this.records().length}`, timeoutMs);
    return this.records();
  }

  close(): void {
    this.tracker.destroyAll();
    this.server.close();
  }
}

interface HttpSettings {
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxHeaderSize: number;
}
const HTTP: HttpSettings = { keepAliveTimeoutMs: 5000, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxHeaderSize: 16384 };

/** Polls `cond` every 5 ms until it holds; fails after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw client connection that keeps what it reads and notes the server's FIN and the close. */
export class RawClient {
  readonly socket: Socket;
  got = '';
  ended = false;
  closed = false;
  error: string | undefined;

  /** `allowHalfOpen`: the client does not close its end when the server does (a peer ignoring the FIN). */
  constructor(port: number, allowHalfOpen = false) {
    this.socket = connect({ port, host: '127.0.0.1', allowHalfOpen });
    this.socket.on('data', (d: Buffer) => (this.got += d.toString('latin1')));
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('error', (err: NodeJS.ErrnoException) => (this.error = err.code));
    this.socket.on('close', () => (this.closed = true));
  }

  connected(): Promise<void> {
    return new Promise((resolve) => (this.socket.connecting ? this.socket.once('connect', () => resolve()) : resolve()));
  }

  send(data: string): void {
    this.socket.write(data, 'latin1');
  }

  /** Waits until what was read contains `text` `times` times. */
  async waitFor(text: string, times = 1): Promise<void> {
    await until(() => this.got.split(text).length - 1 >= times, `${JSON.stringify(text)} x${times} in ${JSON.stringify(this.got)}`);
  }

  async waitClosed(): Promise<void> {
    await until(() => this.closed, 'the connection to close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
