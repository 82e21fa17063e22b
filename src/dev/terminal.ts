/**
 * What `corral dev` prints besides the access lines: a start banner, one line per change
 * and per reload, and a failed load once, with its file, line and the source around it.
 * Everything goes through the error log's sink, so it stays in order with the app's output.
 */
import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { ErrorLog } from '../logging/error-log.js';
import { codeFrame, findSyntaxError, locationFromStack, type SourceLocation } from './code-frame.js';

/** corral's own code: never the place to show for an app's error. */
const CORRAL_DIR = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

interface BootError {
  message: string;
  stack: string | undefined;
}

/** The master's lines that only repeat a boot error the terminal shows with its source. */
const REPEATS = [/ failed to boot: /, /^reload #\d+ failed/];

export class DevTerminal {
  private bootError: BootError | undefined;
  private waiting: (() => void) | undefined;

  constructor(
    private readonly write: (text: string) => void,
    private readonly cwd: string,
    readonly color: boolean,
  ) {}

  private paint(code: string, s: string): string {
    return this.color ? `\x1b[${code}m${s}\x1b[0m` : s;
  }

  info(text: string): void {
    this.write(`${this.paint('36', 'corral')} ${text}\n`);
  }

  dim(text: string): void {
    this.info(this.paint('2', text));
  }

  ok(text: string): void {
    this.info(this.paint('32', text));
  }

  warn(text: string): void {
    this.info(this.paint('33', text));
  }

  short(file: string): string {
    const rel = relative(this.cwd, file);
    return rel && !rel.startsWith('..') ? rel : file;
  }

  /**
   * Looks at every error-log record before it is written; true means "shown otherwise,
   * leave it out". Workers' fatal records are a boot failure: kept for `showBootError`.
   */
  intercept(json: string): boolean {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(json) as Record<string, unknown>;
    } catch {
      return false;
    }
    const msg = String(rec.msg ?? '');
    if (rec.role === 'worker' && rec.level === 'fatal') {
      const err = rec.err as { stack?: string } | undefined;
      this.bootError = { message: msg, stack: typeof rec.stack === 'string' ? rec.stack : err?.stack };
      this.waiting?.();
      return true;
    }
    if (rec.role === 'master' && (rec.level === 'fatal' || (rec.level === 'error' && REPEATS.some((re) => re.test(msg))))) return true;
    return false;
  }

  /** A worker's record of why it failed to boot, waiting a little for it to arrive. */
  async takeBootError(waitMs = 500): Promise<BootError | undefined> {
    if (!this.bootError) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, waitMs);
        this.waiting = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiting = undefined;
    }
    const e = this.bootError;
    this.bootError = undefined;
    return e;
  }

  /** The boot error, once: headline with file:line, the source around it, and what happens next. */
  async showBootError(fallback: string, candidates: string[], next: string): Promise<void> {
    const e = await this.takeBootError();
    const message = e?.message ?? fallback;
    let loc: SourceLocation | undefined = e?.stack ? locationFromStack(e.stack, [CORRAL_DIR]) : undefined;
    let why = message;
    if (!loc && /SyntaxError/.test(message + (e?.stack ?? ''))) {
      const found = await findSyntaxError(candidates);
      if (found) {
        loc = found.loc;
        why = found.message;
      }
    }
    const where = loc ? `${this.short(loc.file)}:${loc.line}${loc.column ? `:${loc.column}` : ''} ` : '';
    const lines = [`${this.paint('31', '✗')} ${this.paint('1', where)}${this.paint('31', loc ? shorten(why, loc.file) : why)}`];
    if (loc) {
      const frame = codeFrame(loc, { color: this.color });
      if (frame) lines.push(frame.split('\n').map((l) => `  ${l}`).join('\n'));
    } else if (e?.stack) {
      lines.push(e.stack.split('\n').slice(0, 6).map((l) => `    ${l}`).join('\n'));
    }
    this.write(lines.join('\n') + '\n');
    this.warn(next);
  }

  /** A version serves: a worker's boot error recorded before is stale. */
  clearBootError(): void {
    this.bootError = undefined;
  }
}

/** "app module /x/app.mjs failed to load: SyntaxError: ..." reads "SyntaxError: ..." once the place is shown. */
function shorten(message: string, file: string): string {
  const m = /failed to load: (.*)$/.exec(message);
  return m && message.includes(file) ? m[1]! : message;
}

/** The error log for dev: records pass the terminal's filter first. */
export class DevErrorLog extends ErrorLog {
  constructor(
    private readonly inner: ErrorLog,
    private readonly terminal: DevTerminal,
  ) {
    super(inner.sink, { pretty: false, syslogPrefix: false });
  }

  override line(json: string): void {
    if (this.terminal.intercept(json.endsWith('\n') ? json.slice(0, -1) : json)) return;
    this.inner.line(json);
  }
}
