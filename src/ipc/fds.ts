import type { StdioOptions } from 'node:child_process';

/**
 * The descriptors a worker is started with, declared once for the master (which builds the
 * stdio array) and the worker (which reads the spec): stdin, stdout and stderr, then the
 * listening sockets from fd 3 on, then the IPC channel, the access stream and the error-log
 * channel.
 */
export interface WorkerFds {
  /** The listeners, in the master's order. */
  listeners: number[];
  ipc: number;
  /** The stream the master's own access destination is on (journald, a pipe), when it is one. */
  accessStream: number;
  /** The worker's error-log lines to the master. */
  errorLog: number;
}

const FIRST_LISTENER_FD = 3;

export function workerFds(listenerCount: number): WorkerFds {
  const after = FIRST_LISTENER_FD + listenerCount;
  return {
    listeners: Array.from({ length: listenerCount }, (_, i) => FIRST_LISTENER_FD + i),
    ipc: after,
    accessStream: after + 1,
    errorLog: after + 2,
  };
}

/**
 * The stdio array that puts the master's descriptors where `workerFds` says: `listenerFds`
 * are the master's listening sockets, `accessStream` its access-log stream (when access
 * lines go to one), `output` what stdout and stderr are.
 */
export function workerStdio(listenerFds: number[], accessStream: number | undefined, output: 'pipe' | 'inherit'): StdioOptions {
  const fds = workerFds(listenerFds.length);
  const stdio: Array<'ignore' | 'pipe' | 'inherit' | 'ipc' | number> = ['ignore', output, output];
  fds.listeners.forEach((fd, i) => (stdio[fd] = listenerFds[i]!));
  stdio[fds.ipc] = 'ipc';
  stdio[fds.accessStream] = accessStream ?? 'ignore';
  stdio[fds.errorLog] = 'pipe';
  return stdio;
}
