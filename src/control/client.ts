/**
 * The client side of the control socket, shared by `corral reload` and `corral status`:
 * find master PID's socket, believe it only if PID's user owns it (control/trust.ts),
 * send a command, and read the answers one checked line at a time, each within a deadline.
 * Every way the conversation can fail is a CorralError with the command's own code.
 */
import { connect, type Socket } from 'node:net';
import { CorralError, type ErrorCode } from '../errors.js';
import { MAX_SERVER_LINE_BYTES, parseControlLine, type ServerMessage } from './protocol.js';
import { trustedSocketPath } from './trust.js';

/** Connecting and hearing the master's first answer takes milliseconds; this bounds a stuck peer. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/** Who a client asks, and the error code its refusals carry. */
interface ControlTarget {
  pid: number;
  code: Extract<ErrorCode, 'E_RELOAD_TARGET' | 'E_STATUS_TARGET'>;
  /** A socket path the caller already found (e.g. by scanning /run/corral/NAME), tried first. */
  path?: string;
}

export class ControlConnection {
  /** The socket file that passed the trust check. */
  readonly path: string;
  private readonly socket: Socket;
  private readonly lines: string[] = [];
  private partial = '';
  private failure: Error | undefined;
  private closed = false;
  private wake: (() => void) | undefined;

  /** Connects to PID's trusted socket; refuses (throws) before connecting to any other. */
  constructor(private readonly target: ControlTarget) {
    this.path = trustedSocketPath(target.pid, (m) => this.refuse(m), target.path);
    this.socket = connect(this.path);
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => this.take(chunk));
    this.socket.on('error', (err) => {
      this.failure ??= this.refuse(`control socket ${this.path} of PID ${target.pid}: ${connectFailure(err, target.pid)}`);
      this.wake?.();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** An error with the target's code: the socket is not (or not behaving as) PID's master. */
  refuse(message: string): CorralError {
    return new CorralError(this.target.code, message);
  }

  send(command: string): void {
    this.socket.write(command + '\n');
  }

  /**
   * The next line from the master, checked. Rejects with `late()` when none comes within
   * ms, with `closed()` when the master hangs up first, and with a refusal when the socket
   * fails or the line is not a well-formed control message.
   */
  async next(ms: number, late: () => Error, closed: () => Error): Promise<ServerMessage> {
    const line = await this.line(ms, late, closed);
    try {
      return parseControlLine(line);
    } catch (err) {
      throw this.refuse(`the control socket ${this.path} of PID ${this.target.pid} sent ${(err as Error).message}; is it a corral master?`);
    }
  }

  close(): void {
    this.wake = undefined;
    this.socket.destroy();
  }

  private take(chunk: string): void {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      this.lines.push(this.partial.slice(0, nl).replace(/\r$/, ''));
      this.partial = this.partial.slice(nl + 1);
    }
    if (this.partial.length > MAX_SERVER_LINE_BYTES) {
      this.failure ??= this.refuse(`the control socket ${this.path} of PID ${this.target.pid} sent a line longer than ${MAX_SERVER_LINE_BYTES} bytes; is it a corral master?`);
      this.socket.destroy();
    }
    this.wake?.();
  }

  private line(ms: number, late: () => Error, closed: () => Error): Promise<string> {
    return new Promise((resolve, reject) => {
      const settle = (): boolean => {
        if (this.lines.length > 0) resolve(this.lines.shift()!);
        else if (this.failure) reject(this.failure);
        else if (this.closed) reject(closed());
        else return false;
        clearTimeout(timer);
        this.wake = undefined;
        return true;
      };
      const timer = setTimeout(() => {
        this.wake = undefined;
        reject(late());
      }, ms);
      if (!settle()) this.wake = settle;
    });
  }
}

/**
 * Why connecting failed, in the operator's terms. A socket file nobody listens on is what a
 * master killed outright (SIGKILL, the OOM killer) leaves: its PID may since belong to
 * another process, which is then not the master that made the file.
 */
function connectFailure(err: Error, pid: number): string {
  if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') return err.message;
  return `nothing listens on it (${err.message}): a master killed outright leaves its socket behind, so PID ${pid} may not be a corral master (or it is exiting now); check the PID`;
}
