import type { Sink } from './sink.js';
import { syslogPriority } from './levels.js';
import { pretty } from './pretty.js';
import { LOG_WRITE_KEY, tellStderr } from './write-failures.js';

export interface ErrorLogMode {
  pretty: boolean;
  syslogPrefix: boolean;
}

/**
 * The master's error log: every JSON line from the master's own logger, from the workers'
 * loggers and from the app's captured output goes through here to the one sink, rendered
 * as JSON, human-readable, and/or with a `<N>` syslog priority prefix.
 */
export class ErrorLog {
  constructor(
    readonly sink: Sink,
    private readonly mode: ErrorLogMode,
  ) {}

  /** One JSON record (a pino line), with or without its trailing newline. */
  line(json: string): void {
    const text = json.endsWith('\n') ? json.slice(0, -1) : json;
    if (!this.sink.isStderr && text.includes(LOG_WRITE_KEY)) tellWriteFailure(text);
    if (!this.mode.pretty && !this.mode.syslogPrefix) {
      this.sink.write(text + '\n');
      return;
    }
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(text) as Record<string, unknown>;
    } catch {
      rec = { level: 'info', msg: text };
    }
    const body = this.mode.pretty ? pretty(rec) : text;
    const prefix = this.mode.syslogPrefix ? `<${syslogPriority(String(rec.level))}>` : '';
    this.sink.write(body.split('\n').map((l) => prefix + l).join('\n') + '\n');
  }

  /** A line the app printed on stdout or stderr, attributed to its worker. */
  captured(stream: 'stdout' | 'stderr', pid: number, worker: string, text: string): void {
    const level = stream === 'stdout' ? 'info' : 'error';
    this.line(JSON.stringify({ level, time: new Date().toISOString(), pid, role: 'app', worker, stream, msg: text }));
  }
}

/**
 * A worker's report that its log cannot be written (or works again) is told on stderr too
 * when the error log is a file: that file may sit on the very disk that is full, and
 * stderr (the journal) is where the operator can still read it.
 */
function tellWriteFailure(text: string): void {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return;
  }
  if (typeof rec.logWrite !== 'string' || typeof rec.msg !== 'string') return;
  tellStderr(`worker ${String(rec.worker)} (pid ${String(rec.pid)}): ${rec.msg}`);
}
