import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

export type ControlEvent = { t: 'reload'; seq: number; ok: boolean; detail: string };

/** A request-response command: its answer is written as one JSON line `{t: NAME, ...answer}`. */
export type ControlHandler = () => Record<string, unknown>;

/**
 * The master's control socket (mode 0600): a client says `watch`, learns how many reloads
 * have started, and then hears of every reload that finishes. `corral reload --wait`
 * uses it to return only when the reload it asked for is done.
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

  broadcast(ev: ControlEvent): void {
    const line = JSON.stringify(ev) + '\n';
    for (const c of this.clients) c.write(line);
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
    s.setEncoding('utf8');
    let buf = '';
    s.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 4096) return void s.destroy();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const cmd = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (cmd === 'watch') {
          this.clients.add(s);
          s.write(JSON.stringify({ t: 'hello', pid: process.pid, seq: this.seq() }) + '\n');
        } else if (this.handlers.has(cmd)) {
          s.write(JSON.stringify({ ...this.handlers.get(cmd)!(), t: cmd }) + '\n');
        } else {
          s.write(JSON.stringify({ t: 'error', message: `unknown command ${JSON.stringify(cmd)}` }) + '\n');
        }
      }
    });
    s.on('close', () => this.clients.delete(s));
    s.on('error', () => this.clients.delete(s));
  }
}
