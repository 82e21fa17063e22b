import type { Readable } from 'node:stream';
import type { ErrorLog } from '../logging/error-log.js';
import { eachLine, relayLines } from '../logging/relay.js';
import type { Sink } from '../logging/sink.js';
import type { WorkerHandle } from './worker-handle.js';

/** The master's log writers, shared by every worker. */
export interface MasterLogs {
  errorLog: ErrorLog;
  access: Sink | undefined;
  /** `<6>` when access lines go to journald. */
  accessPrefix: string;
}

/**
 * Connects a new worker's channels to the master's single writers: access lines are passed
 * on in whole-line chunks (with backpressure), error-log lines and captured stdout/stderr go
 * through the ErrorLog, attributed to the worker.
 */
export function attachWorkerLogs(w: WorkerHandle, logs: MasterLogs, listenerCount: number): void {
  const stdio = w.child.stdio as Array<Readable | null>;
  const accessStream = stdio[4 + listenerCount];
  const errorStream = stdio[5 + listenerCount];
  const name = `${w.gen}.${w.slot}`;
  const access = logs.access;
  if (access && accessStream) {
    relayLines(accessStream, (lines, resume) => {
      if (access.write(lines)) return true;
      access.onDrain(resume);
      return false;
    });
  }
  if (errorStream) {
    relayLines(errorStream, (lines) => {
      eachLine(lines, (line) => logs.errorLog.line(line));
      return true;
    });
  }
  for (const [stream, which] of [[stdio[1], 'stdout'], [stdio[2], 'stderr']] as const) {
    if (!stream) continue;
    const each = (line: string) => logs.errorLog.captured(which, w.pid, name, line);
    relayLines(stream, (lines) => {
      eachLine(lines, each);
      return true;
    }, each);
  }
}
