import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { MAX_CLIENT_BYTES, type Hello, type ReloadEvent, type ServerMessage } from './protocol.js';

const IDLE_BEFORE_WATCH_MS = 10_000;

/** A request-response command: its answer is written as one JSON line `{t: NAME, ...answer}`. */
type ControlHandler = () => Record<string, unknown>;

/**
 * The master's control socket (mode 0600): a client says `watch`, hears a hello with the
 * master's PID and how many reloads have started, and then hears of every reload that
 * finishes. `corral reload` uses the hello to check that PID is this master before it
 * signals, and with --wait returns only when the reload it asked for is done.
 */
export class ControlServer {
  private readonly clients = new Set<Socket>();
  private seq: () => number = () => 0;
  private readonly handlers = new Map<string, ControlHandler>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  static async listen(path: string): Promise<ControlServer> {
    try {
      unlinkSync(path); // a PID is never reused while its master runs, so a file here is stale
    } catch {
      // none
    }
    const server = createServer();
    const control = new ControlServer(server, path);
    server.on('connection', (s) => control.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    server.unref();
    return control;
  }

  onWatch(seq: () => number): void {
    this.seq = seq;
  }

  /** Registers a command (e.g. `status`) answered at once with one JSON line. */
  handle(name: string, fn: ControlHandler): void {
    this.handlers.set(name, fn);
  }

  broadcast(ev: ReloadEvent): void {
    for (const c of this.clients) send(c, ev);
  }

  close(): void {
    for (const c of this.clients) c.destroy();
    this.server.close();
    try {
      unlinkSync(this.path);
    } catch {
      // gone
    }
  }

  private accept(s: Socket): void {
    s.unref();
    // A peer that never says `watch` is not a corral client; a watcher may wait for minutes.
    s.setTimeout(IDLE_BEFORE_WATCH_MS, () => {
      if (!this.clients.has(s)) s.destroy();
    });
    let received = 0;
    s.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_CLIENT_BYTES) s.destroy();
    });
    createInterface({ input: s, crlfDelay: Infinity }).on('line', (line) => {
      const cmd = line.trim();
      if (cmd === 'watch') {
        this.clients.add(s);
        s.setTimeout(0);
        const hello: Hello = { t: 'hello', pid: process.pid, seq: this.seq() };
        send(s, hello);
      } else if (this.handlers.has(cmd)) {
        if (!s.destroyed) s.write(JSON.stringify({ ...this.handlers.get(cmd)!(), t: cmd }) + '\n');
      } else {
        send(s, { t: 'error', message: `unknown command ${JSON.stringify(cmd.slice(0, 80))}` });
      }
    });
    s.on('close', () => this.clients.delete(s));
    s.on('error', () => this.clients.delete(s));
  }
}

function send(s: Socket, msg: ServerMessage): void {
  if (!s.destroyed) s.write(JSON.stringify(msg) + '\n');
}
