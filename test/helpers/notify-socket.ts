import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * Pretends to be systemd's notification socket: a unix datagram socket bound by a tiny
 * python3 receiver (Node has no AF_UNIX datagram sockets), printing one JSON string per
 * datagram. `messages` collects them in order.
 */
export class FakeNotifySocket {
  readonly path: string;
  readonly messages: string[] = [];
  private readonly dir: string;
  private readonly proc: ChildProcess;
  private waiters: Array<() => void> = [];

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'corral-notify-'));
    this.path = join(this.dir, 'notify.sock');
    const code = [
      'import socket, sys, json',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(sys.argv[1])',
      'print("bound", flush=True)',
      'while True:',
      '    d = s.recv(65536)',
      '    print(json.dumps(d.decode()), flush=True)',
    ].join('\n');
    this.proc = spawn('python3', ['-c', code, this.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.messages.push(line === 'bound' ? '__bound__' : (JSON.parse(line) as string));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async create(): Promise<FakeNotifySocket> {
    const s = new FakeNotifySocket();
    await s.waitFor((m) => m === '__bound__', 5000);
    s.messages.length = 0;
    return s;
  }

  /** Waits until a message matches; returns its index. */
  async waitFor(match: (m: string) => boolean, timeoutMs = 15_000, from = 0): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex((m, idx) => idx >= from && match(m));
      if (i >= 0) return i;
      if (Date.now() > end) throw new Error(`no matching notification within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  close(): void {
    this.proc.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
