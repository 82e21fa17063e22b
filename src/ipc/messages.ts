/** What the master tells a worker at spawn (JSON in the CORRAL_WORKER variable, removed at once). */
export interface WorkerSpec {
  gen: number;
  slot: number;
  app: string;
  cwd: string;
  /** Listening sockets, inherited as fds 3, 4, ... in this order; `tls`: served with TLS (the pair comes over the channel). */
  listeners: Array<{ fd: number; label: string; proxyProtocol?: boolean; tls?: boolean }>;
  /** For listeners with proxyProtocol: the peers that may send the header (proxy-protocol-from). */
  proxyProtocolFrom?: string[];
  backlog: number;
  http: {
    keepAliveTimeoutMs: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    maxHeaderSize: number;
  };
  /** Who a request came from behind proxies (docs/proxies.md). */
  forwarded: {
    /** forwarded-allow-ips: the proxies whose forwarding headers are believed. */
    allow: string[];
    /** forwarded-headers: drop those an untrusted peer sent before the app sees them. */
    dropUntrusted: boolean;
  };
  heartbeatMs: number;
  /** Record the request-duration histogram (the metrics listener is on). */
  metrics?: boolean;
  /** How long a drain may take once the master is gone (it cannot enforce it then). */
  gracefulTimeoutMs: number;
  /** How a drain ends the WebSockets and event streams the app left open (docs/long-lived.md). */
  longLived: {
    /** Window over which corral's own closes are spread (ms), already capped at half of gracefulTimeoutMs. */
    spreadMs: number;
    /** Close code at a reload, a recycle or a scale-down. */
    closeReload: number;
    /** Close code at a stop. */
    closeStop: number;
  };
  /**
   * The directory of Node's module compile cache (compile-cache), enabled before the app loads
   * where the Node line has it; absent: off.
   */
  compileCache?: string;
  /** Requests the worker serves itself before it listens (warmup-requests); absent: none. */
  warmup?: {
    paths: string[];
    /** Times each path is requested. */
    count: number;
    /** boot-timeout (ms): the warm-up must be over well before the master's kill. */
    bootTimeoutMs: number;
  };
  /** Requests after which this worker asks to be replaced (0: never); jitter already added. */
  maxRequests: number;
  logLevel: string;
  logs: {
    /** Where this worker writes its access lines itself (absent when the access log is off). */
    access: AccessDestination | undefined;
    /** How often a failing access log is reported and reopened (ms). */
    writeErrorIntervalMs: number;
    /** The error-log channel to the master. */
    errorFd: number;
    accessFormat: string;
    /** `<6>` when access lines end up in journald. */
    accessPrefix: string;
    slowMs: number;
  };
  /** The config file has worker-side hooks (docs/hooks.md): the worker loads them from it. */
  hooks?: WorkerHooksSpec;
}

export interface WorkerHooksSpec {
  /** The config file, loaded by the worker for its hooks only. */
  file: string;
  /** hook-timeout (ms). */
  timeoutMs: number;
  /** A workerBoot hook is given: the app loads only after it (else the file loads beside the app). */
  boot: boolean;
}

/**
 * An access-log destination as a worker sees it: a file it opens itself with O_APPEND (the
 * path the master chose: built-in rotation numbers it), or a stream the master inherited
 * (journald, a pipe, a terminal), passed as a descriptor.
 */
export type AccessDestination = { kind: 'file'; path: string } | { kind: 'stream'; fd: number };

/** The request a worker is busy with, for the log line when it is killed for silence. */
export interface BusyWith {
  method: string;
  url: string;
  forMs: number;
}

/**
 * One method+status series of the request-duration histogram since the worker started:
 * the count in each bucket of DURATION_BUCKETS plus one for +Inf (per bucket, not
 * cumulative over `le`), and the sum of durations in seconds.
 */
export type HttpSeries = [method: string, status: number, counts: number[], sum: number];

/** A metric of the app's own prom-client registry, as its getMetricsAsJSON() gives it. */
export interface AppMetricFamily {
  name: string;
  help: string;
  type: string;
  values: Array<{ value: number; labels?: Record<string, string | number>; metricName?: string }>;
}

/** A class of long-lived connection: an upgraded socket (WebSocket) or a Server-Sent Event stream. */
export type LongLivedKind = 'websocket' | 'stream';

/**
 * Who ended a long-lived connection: the client; the app (on its own, or when the drain
 * signal told it); corral's polite close during a drain (a close frame, a clean end of body);
 * or corral's cut at the end of graceful-timeout (or the socket failed).
 */
export type LongLivedCloser = 'client' | 'app' | 'drain' | 'forced';

/** The worker's long-lived connections, sent with its heartbeat: counts now, the rest cumulative. */
export interface LongLivedFigures {
  /** Open upgraded connections. */
  websockets: number;
  /** Open event streams. */
  streams: number;
  /** Closes since the worker started, by kind and closer (only non-zero series). */
  closed: Array<[kind: LongLivedKind, by: LongLivedCloser, count: number]>;
  /**
   * How long closed ones lasted, per kind: counts per bucket of LONG_LIVED_BUCKETS
   * (metrics/definitions.ts) plus one for +Inf (per bucket, not cumulative), and the sum in seconds.
   */
  durations: Array<[kind: LongLivedKind, counts: number[], sum: number]>;
}

/** Why a connection to a PROXY protocol listener was closed before HTTP (worker/proxy-header.ts). */
export type ProxyRejectReason = 'peer_not_allowed' | 'invalid' | 'timeout' | 'closed';

/** What a worker measured, sent with its heartbeat: cumulative values, never deltas. */
export interface WorkerFigures {
  /** Requests answered (or abandoned by the client) since the worker started. */
  requests: number;
  /** 99th percentile of the event-loop delay over the last interval (seconds). */
  eld: number;
  /** Share of the last interval its event loop was busy (0..1); absent from an older worker. */
  elu?: number;
  /** Every series, each time (absent when metrics are off). */
  http?: HttpSeries[];
  /** The app's prom-client metrics, only when they changed (at most every few seconds). */
  app?: AppMetricFamily[];
  /**
   * Its WebSockets and event streams, absent while none is open and none ever closed (absent
   * means all zero, not "unchanged"); without the closes and durations when metrics are off.
   */
  longLived?: LongLivedFigures;
  /** Connections closed for want of a valid PROXY protocol header, by reason; absent while none was. */
  proxyRejected?: Record<ProxyRejectReason, number>;
}

/** Why a worker asks to be replaced: the master turns it into the exit's typed cause. */
export type RetireReason = 'max-requests' | 'uncaught exception';

/** What failed in a worker's boot: loading the app, its init, a warm-up request, listening. */
export type BootFailureKind = 'load' | 'init' | 'warmup' | 'listen';

export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'hb'; rss: number; inflight: number; busy?: BusyWith; m?: WorkerFigures }
  | { t: 'retire'; reason: RetireReason }
  /** How many of its open connections have carried more than one request. */
  | { t: 'conns'; kept: number }
  /** `code`: with kind 'load', the errors.ts code of why the app cannot be loaded (E_APP_*). */
  | { t: 'boot-failed'; kind: BootFailureKind; message: string; code?: string }
  /** A worker with TLS listeners asks for the pair to serve (the master answers with `tls`). */
  | { t: 'tls-wanted' };

/**
 * Whether a message a worker sent can be one of corral's: an object with a string `t`. The
 * worker's channel is shared with the app (process.send), so anything else is the app's.
 */
export function isWorkerMessage(msg: unknown): msg is WorkerMessage {
  return typeof msg === 'object' && msg !== null && typeof (msg as { t?: unknown }).t === 'string';
}

/**
 * Why a worker drains, as the app hears it (the `reason` of the drain signal): a reload, a
 * stop of the whole server, a recycle (max-requests, max-memory, an uncaught exception) or a
 * scale-down (TTOU).
 */
export type DrainReason = 'reload' | 'shutdown' | 'recycle' | 'scale-down';

export type MasterMessage =
  | { t: 'drain'; reason: DrainReason }
  | { t: 'stop' }
  /** Reopen the access log: by the same name (USR1, logrotate), or at `path` (built-in rotation). */
  | { t: 'reopen'; path?: string }
  /** The most kept connections this worker should hold (it holds more), or null when it is within its share. */
  | { t: 'balance'; limit: number | null }
  /** The certificate (with its chain), key and client CAs to serve, checked by the master: at boot, and swapped in place later. */
  | { t: 'tls'; cert: string; key: string; ca?: string };

