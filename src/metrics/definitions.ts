/**
 * Every metric corral exposes on `/metrics`, declared once: name, type, labels and a
 * one-line doc. The text exposition and docs/metrics.md are generated from this table.
 * Names follow the OpenTelemetry HTTP semantic conventions as Prometheus spells them,
 * and `corral_*` for the supervisor; base units (seconds, bytes), `_total` on counters.
 */

import type { LongLivedCloser, LongLivedKind, ProxyRejectReason } from '../ipc/messages.js';

type MetricType = 'counter' | 'gauge' | 'histogram';

interface MetricDef {
  type: MetricType;
  labels: readonly string[];
  /** Who measures it: the workers (pushed with their heartbeat) or the master itself. */
  source: 'workers' | 'master';
  help: string;
}

function metric(d: MetricDef): MetricDef {
  return d;
}

/** OpenTelemetry's default buckets for http.server.request.duration (seconds). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;

/** Methods OpenTelemetry names; any other is reported as `_OTHER` (bounded labels). */
export const KNOWN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
export const OTHER_METHOD = '_OTHER';

/**
 * Bucket bounds (seconds) of corral_long_lived_connection_duration_seconds: a WebSocket or an
 * event stream lives from seconds (a page left at once) to a day, so the bounds go from 1 s
 * to 24 h, each a few times the previous.
 */
export const LONG_LIVED_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 14400, 86400] as const;

/** Every value of a string union, in the order given; the compiler checks none is missing. */
const every = <T extends string>(values: Record<T, true>): readonly T[] => Object.keys(values) as T[];

/** The `kind` label of the long-lived connection metrics. */
export const LONG_LIVED_KINDS = every<LongLivedKind>({ websocket: true, stream: true });
/** The `closed_by` label of corral_long_lived_closes_total. */
export const LONG_LIVED_CLOSERS = every<LongLivedCloser>({ client: true, app: true, drain: true, forced: true });

/** The `reason` label of corral_proxy_protocol_rejected_total. */
export const PROXY_REJECT_REASONS = every<ProxyRejectReason>({ peer_not_allowed: true, invalid: true, timeout: true, closed: true });

export const EXIT_REASONS = ['crash', 'timeout', 'memory', 'max_requests', 'reload', 'scale_down', 'shutdown'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

const WORKER_STATES = ['booting', 'ready', 'draining'] as const;
export type WorkerMetricState = (typeof WORKER_STATES)[number];

export const METRICS = {
  http_server_request_duration_seconds: metric({
    type: 'histogram',
    labels: ['http_request_method', 'http_response_status_code'],
    source: 'workers',
    help: 'Duration of HTTP server requests, from the first byte of the request to the end of the response, summed over every worker (those that exited included); WebSockets and event streams are in corral_long_lived_connection_duration_seconds instead.',
  }),
  http_server_active_requests: metric({
    type: 'gauge',
    labels: [],
    source: 'workers',
    help: 'HTTP requests in flight, over every live worker, as of their last heartbeat.',
  }),
  corral_workers: metric({
    type: 'gauge',
    labels: ['state'],
    source: 'master',
    help: 'Live worker processes by state: booting (not ready yet), ready (serving), draining (finishing in-flight requests before exit).',
  }),
  corral_workers_desired: metric({
    type: 'gauge',
    labels: [],
    source: 'master',
    help: 'Workers the serving generation should have now: workers, or within a range of workers what the load asks, moved by TTIN/TTOU.',
  }),
  corral_workers_min: metric({
    type: 'gauge',
    labels: [],
    source: 'master',
    help: 'The fewest workers the serving generation keeps: workers (its minimum for a range), shifted by TTIN/TTOU.',
  }),
  corral_workers_max: metric({
    type: 'gauge',
    labels: [],
    source: 'master',
    help: 'The most workers the serving generation may have: workers (its maximum for a range), shifted by TTIN/TTOU; equal to corral_workers_min for a fixed count.',
  }),
  corral_scaling_decisions_total: metric({
    type: 'counter',
    labels: ['direction', 'reason'],
    source: 'master',
    help: 'Changes of the number of workers, by direction and reason: up (queue: connections waiting in the accept queue; busy: event loops above scale-up-busy; delay: event-loop delay high at half that; ttin), down (idle: one worker fewer was enough for scale-idle-timeout; ttou), and held (a wanted scale-up refused: max, the range\'s maximum; memory, the cgroup\'s limit), each counted once per episode.',
  }),
  corral_worker_starts_total: metric({
    type: 'counter',
    labels: [],
    source: 'master',
    help: 'Worker processes started.',
  }),
  corral_worker_exits_total: metric({
    type: 'counter',
    labels: ['reason'],
    source: 'master',
    help: 'Worker processes that exited, by reason: crash, timeout (silent or not ready in time), memory, max_requests, reload, scale_down (TTOU, or a range of workers shrinking when idle), shutdown.',
  }),
  corral_proxy_protocol_rejected_total: metric({
    type: 'counter',
    labels: ['reason'],
    source: 'workers',
    help: 'Connections to proxy-protocol listeners closed before HTTP, by reason: peer_not_allowed (not in proxy-protocol-from), invalid (no header, or a malformed one), timeout (not complete within headers-timeout), closed (the peer closed half-way); summed over every worker.',
  }),
  corral_reloads_total: metric({
    type: 'counter',
    labels: ['result'],
    source: 'master',
    help: 'Reloads (HUP) finished, by result: ok (the new generation serves) or failed (the old one keeps serving).',
  }),
  corral_generation: metric({
    type: 'gauge',
    labels: [],
    source: 'master',
    help: 'Number of the generation of workers that is serving (1 at start, one more per successful reload).',
  }),
  corral_worker_memory_bytes: metric({
    type: 'gauge',
    labels: ['slot'],
    source: 'workers',
    help: 'Resident memory (RSS) of the worker serving each slot, as of its last heartbeat.',
  }),
  corral_worker_eventloop_delay_seconds: metric({
    type: 'gauge',
    labels: ['slot'],
    source: 'workers',
    help: '99th percentile of the event-loop delay of the worker serving each slot, over its last heartbeat interval.',
  }),
  corral_worker_eventloop_utilization: metric({
    type: 'gauge',
    labels: ['slot'],
    source: 'workers',
    help: 'Share (0 to 1) of its last heartbeat interval the event loop of the worker serving each slot was busy: what a range of workers scales on.',
  }),
  // Long-lived connections. OpenTelemetry has no general convention for WebSockets or
  // Server-Sent Event streams: only product-specific ones (.NET's kestrel.upgraded_connections,
  // an up-down counter of upgraded connections; signalr.server.active_connections and
  // signalr.server.connection.duration, by transport and closure status). corral follows
  // their shape in its own namespace: a gauge of open connections, a duration histogram in
  // seconds and a counter of closes, with the transport as `kind` and who closed as `closed_by`.
  corral_long_lived_connections: metric({
    type: 'gauge',
    labels: ['kind', 'slot'],
    source: 'workers',
    help: 'Open long-lived connections by kind (websocket: upgraded connections; stream: Server-Sent Event streams), per slot, over every live worker of that slot (a draining one included), as of their last heartbeat.',
  }),
  corral_long_lived_connection_duration_seconds: metric({
    type: 'histogram',
    labels: ['kind'],
    source: 'workers',
    help: 'How long long-lived connections lasted, from the upgrade or the start of the stream to the close, by kind, summed over every worker (those that exited included).',
  }),
  corral_long_lived_closes_total: metric({
    type: 'counter',
    labels: ['kind', 'closed_by'],
    source: 'workers',
    help: 'Long-lived connections closed, by kind and by who closed them: client, app, drain (corral\'s polite close during a drain) or forced (cut at graceful-timeout, a failed socket, or still open when its worker died).',
  }),
  corral_listen_queue_length: metric({
    type: 'gauge',
    labels: ['listener'],
    source: 'master',
    help: 'Connections waiting in the kernel\'s accept queue of each TCP listener (not available for unix sockets).',
  }),
  corral_listen_queue_limit: metric({
    type: 'gauge',
    labels: ['listener'],
    source: 'master',
    help: 'Capacity of that accept queue: backlog, capped by net.core.somaxconn (TCP listeners only).',
  }),
  // The certificate's end as a Unix timestamp, as the Prometheus convention for points in
  // time has it (`_timestamp_seconds`, like process_start_time_seconds): an alert is then
  // `corral_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400`.
  corral_tls_certificate_expiry_timestamp_seconds: metric({
    type: 'gauge',
    labels: ['listener', 'subject', 'serial'],
    source: 'master',
    help: 'When the certificate each TLS listener serves now expires (its notAfter), in seconds since the Unix epoch; the serial changes with each new certificate swapped in.',
  }),
  corral_tls_certificate_swaps_total: metric({
    type: 'counter',
    labels: ['result'],
    source: 'master',
    help: 'New certificate pairs after a HUP or a change of the files, by result: ok (swapped in place in the running workers) or refused (not usable; the current pair keeps serving). Failed HUPs count in corral_reloads_total.',
  }),
  corral_build_info: metric({
    type: 'gauge',
    labels: ['version', 'node'],
    source: 'master',
    help: 'Always 1; the labels say which corral and which Node.js run the master.',
  }),
} satisfies Record<string, MetricDef>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];
