import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { workerFds } from '../ipc/fds.js';
import type { LogFiles } from '../logging/log-files.js';
import type { ErrorLog } from '../logging/error-log.js';
import { eachLine, relayLines } from '../logging/relay.js';

/**
 * Where the access log goes, as the master decides it: workers write their own lines there.
 * A file (the master chooses which, for rotation), or the stream the master inherited on
 * stdout (journald under systemd), passed to every worker.
 */
export type AccessPlan = { kind: 'file'; files: LogFiles } | { kind: 'stream'; fd: number };

/** The master's log writers and decisions, shared by every worker. */
export interface MasterLogs {
  errorLog: ErrorLog;
  access: AccessPlan | undefined;
  /** `<6>` when access lines go to journald. */
  accessPrefix: string;
}

/**
 * Connects a new worker's channels to the master's error log: the worker's error-log lines
 * and its captured stdout/stderr go through the ErrorLog, attributed to the worker. Access
 * lines never pass here: each worker writes its own.
 */
export function attachWorkerLogs(child: ChildProcess, name: string, logs: MasterLogs, listenerCount: number): void {
  const stdio = child.stdio as Array<Readable | null>;
  const errorStream = stdio[workerFds(listenerCount).errorLog];
  if (errorStream) {
    relayLines(errorStream, (lines) => {
      eachLine(lines, (line) => logs.errorLog.line(line));
      return true;
    });
  }
  for (const [stream, which] of [[stdio[1], 'stdout'], [stdio[2], 'stderr']] as const) {
    if (!stream) continue;
    const each = (line: string) => logs.errorLog.captured(which, child.pid ?? -1, name, line);
    relayLines(stream, (lines) => {
      eachLine(lines, each);
      return true;
    }, each);
  }
}
