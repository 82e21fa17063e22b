/** What the master tells a worker at spawn (JSON in the CORRAL_WORKER variable, removed at once). */
export interface WorkerSpec {
  gen: number;
  slot: number;
  app: string;
  cwd: string;
  /** Listening sockets, inherited as fds 3, 4, ... in this order. */
  listeners: Array<{ fd: number; label: string }>;
  backlog: number;
  http: {
    keepAliveTimeoutMs: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    maxHeaderSize: number;
  };
  heartbeatMs: number;
  /** Requests after which this worker asks to be replaced (0: never); jitter already added. */
  maxRequests: number;
  logLevel: string;
  logs: {
    /** The access channel to the master (absent when the access log is off). */
    accessFd: number | undefined;
    /** The error-log channel to the master. */
    errorFd: number;
    accessFormat: string;
    /** `<6>` when access lines end up in journald. */
    accessPrefix: string;
    slowMs: number;
  };
}

/** The request a worker is busy with, for the log line when it is killed for silence. */
export interface BusyWith {
  method: string;
  url: string;
  forMs: number;
}

export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'hb'; rss: number; inflight: number; busy?: BusyWith }
  | { t: 'retire'; reason: string }
  /** How many of its open connections have carried more than one request. */
  | { t: 'conns'; kept: number }
  | { t: 'boot-failed'; kind: 'load' | 'init' | 'listen'; message: string };

export type MasterMessage =
  | { t: 'drain' }
  | { t: 'stop' }
  /** The fair share of kept connections, and whether this worker holds more than its share. */
  | { t: 'balance'; fair: number; over: boolean };

/** Exit codes a worker uses so the master can tell why it died before it could say so. */
export const WORKER_EXIT = { APP_LOAD: 4, INIT: 3 } as const;
