/**
 * Every setting, declared once: name, flag, environment variable, type, default and a
 * one-line doc. The CLI options, `corral print-config` and docs/settings.md are generated
 * from this table; nothing else lists settings.
 */
import { compile as compileTrust } from 'proxy-addr';
import { parseBind } from '../listeners/bind-spec.js';
import { usableCpus } from './cpus.js';
import type { CorralHooks } from './hooks.js';
import { fixed, workerRange } from './worker-range.js';
import { compileAccessFormat } from '../logging/access-format.js';
import { nodeOptionsProblem } from './node-options.js';
import { LOG_LEVEL_CHOICES } from '../logging/levels.js';
import { trustEntryProblem, trustListProblem } from '../proxies/forwarded.js';
import {
  boolean, bytes, fileMode, integer, list, oneOf, optionalText, seconds, text, RuleError, type ValueType,
} from './validators.js';

interface EnvAlias<T> {
  /** A conventional variable honoured besides CORRAL_<NAME>, with lower precedence. */
  name: string;
  map?: (raw: string) => T;
}

export interface Setting<T> {
  /** Where it goes in docs/settings.md and --help. */
  section: 'App' | 'Listeners' | 'Workers' | 'HTTP' | 'Config' | 'Logs';
  type: ValueType<T>;
  default: NoInfer<T> | (() => NoInfer<T>);
  /** How the docs describe a computed default. */
  defaultDoc?: string;
  doc: string;
  short?: string;
  /** Not accepted from a config file (it chooses the file, or must be known before it is read). */
  notInFile?: boolean;
  envAliases?: EnvAlias<T>[];
  /** Applied by HUP (re-read config): false for settings that need a restart. */
  reloadable?: boolean;
}

function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

const bindItem = text('ADDRESS', (s) => {
  try {
    parseBind(s);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
});

const metricsBindItem = (s: string): string | undefined => {
  if (s === 'off') return undefined;
  try {
    if (parseBind(s).kind === 'fd') return 'must be HOST:PORT, [IPv6]:PORT or unix:/path (fd:// is for the app\'s listeners)';
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

const trustedItems = list(text('ADDRESS|CIDR|KEYWORD', trustEntryProblem), { min: 1 });
const trustedList: ValueType<string[]> = {
  ...trustedItems,
  parse(raw) {
    const entries = trustedItems.parse(raw);
    const problem = trustListProblem(entries);
    if (problem) throw new RuleError(`${JSON.stringify(entries.join(','))} is not valid: ${problem}`);
    return entries;
  },
};

export const SETTINGS = {
  app: setting({
    section: 'App',
    type: optionalText('APP[:EXPORT]'),
    default: undefined,
    doc: 'The module to serve, with an optional export name (`server.mjs:app`); also the positional argument.',
  }),
  bind: setting({
    section: 'Listeners',
    type: list(bindItem, { min: 1 }),
    default: ['0.0.0.0:8000'],
    short: 'b',
    doc: 'Address to listen on: HOST:PORT, [IPv6]:PORT, unix:/path or fd://N; repeat for several. Ignored when systemd passes sockets.',
    envAliases: [{ name: 'PORT', map: (raw) => [`0.0.0.0:${raw}`] }],
    reloadable: false,
  }),
  backlog: setting({
    section: 'Listeners',
    type: integer(1, 65535),
    default: 2048,
    doc: 'Length of the queue of connections waiting to be accepted, set on every listener including those systemd passes (match Backlog= in the socket unit; capped by net.core.somaxconn).',
    reloadable: false,
  }),
  unixSocketMode: setting({
    section: 'Listeners',
    type: fileMode(),
    default: 0o660,
    doc: 'File mode of unix sockets corral binds itself (the group must include the proxy user, or use 0666).',
    reloadable: false,
  }),
  metricsBind: setting({
    section: 'Listeners',
    type: optionalText('ADDRESS', metricsBindItem),
    default: undefined,
    defaultDoc: 'off',
    doc: 'The master\'s own listener for /metrics (Prometheus), /livez and /readyz: HOST:PORT, [IPv6]:PORT or unix:/path; `off` or unset: none (see docs/metrics.md).',
    reloadable: false,
  }),
  proxyProtocol: setting({
    section: 'Listeners',
    type: list(text('LISTENER', (s) => {
      if (s.startsWith('systemd:')) return s.length > 'systemd:'.length ? undefined : 'systemd: needs the socket\'s name (FileDescriptorName=)';
      try {
        parseBind(s);
        return undefined;
      } catch (err) {
        return `${(err as Error).message}, or systemd:NAME`;
      }
    })),
    default: [],
    defaultDoc: 'none',
    doc: 'Listeners that expect a PROXY protocol header (v1 or v2) on every connection, named as in --bind (HOST:PORT, [IPv6]:PORT, unix:/path, fd://N) or, for sockets systemd passes, systemd:NAME (FileDescriptorName=) or fd://N; repeat for several. Strict: a connection without a valid header is closed (see docs/proxies.md).',
    reloadable: false,
  }),
  proxyProtocolFrom: setting({
    section: 'Listeners',
    type: list(text('ADDRESS', (s) => {
      try {
        compileTrust([s]);
        return undefined;
      } catch (err) {
        return `must be an IP address, a CIDR, or loopback, linklocal, uniquelocal (${(err as Error).message})`;
      }
    }), { min: 1 }),
    default: ['loopback'],
    doc: 'Peers that may send a PROXY protocol header: IP addresses, CIDRs, or loopback, linklocal, uniquelocal; connections to a proxy-protocol listener from any other TCP peer are closed (unix-socket peers are admitted by the socket\'s file mode).',
  }),
  tlsCert: setting({
    section: 'Listeners',
    type: optionalText('PATH'),
    default: undefined,
    doc: 'PEM file of the server certificate followed by its chain (certbot\'s fullchain.pem). With tls-key set, the listeners of tls-bind serve HTTPS (HTTP/1.1), or every listener when tls-bind is empty. A new pair is swapped in place in running workers at a HUP or when the files change (see docs/deployment.md).',
  }),
  tlsKey: setting({
    section: 'Listeners',
    type: optionalText('PATH'),
    default: undefined,
    doc: 'PEM file of the certificate\'s private key (unencrypted; keep it readable only by corral\'s user).',
  }),
  tlsClientCa: setting({
    section: 'Listeners',
    type: optionalText('PATH'),
    default: undefined,
    defaultDoc: 'unset: no client certificate is asked for',
    doc: 'PEM file of the CAs that sign client certificates (mutual TLS): every TLS handshake must then present a client certificate one of them signed, or it is refused (requestCert and rejectUnauthorized).',
  }),
  tlsBind: setting({
    section: 'Listeners',
    type: list(bindItem),
    default: [],
    defaultDoc: 'none: with tls-cert set, every listener serves TLS',
    doc: 'Addresses that serve TLS, bound besides the plain ones of bind (same syntax; repeat for several). Empty: with tls-cert set, every listener serves TLS. When systemd passes sockets, those named `tls` (FileDescriptorName=tls) serve TLS if this is set, every one if not.',
    reloadable: false,
  }),
  workers: setting({
    section: 'Workers',
    type: workerRange(),
    default: () => fixed(usableCpus()),
    defaultDoc: 'usable CPUs (affinity and cgroup quota honoured)',
    short: 'w',
    doc: 'Number of worker processes, or a range MIN..MAX (`2..8`; in a config file also `{ min: 2, max: 8 }`): the master then adds workers when the load outgrows them and retires them when it is quiet (see docs/scaling.md).',
    envAliases: [{ name: 'WEB_CONCURRENCY' }],
  }),
  scaleUpWindow: setting({
    section: 'Workers',
    type: seconds(0.1, { max: 3600 }),
    default: 2,
    doc: 'With a range of workers: how long the load must stay above what the workers handle (connections waiting in the accept queue, or event loops busy beyond scale-up-busy) before a worker is added; a shorter spike adds none.',
  }),
  scaleUpBusy: setting({
    section: 'Workers',
    type: integer(10, 100),
    default: 80,
    doc: 'With a range of workers: the mean event-loop utilization (percent of the time the workers\' event loops are busy) above which the load counts as outgrowing them.',
  }),
  scaleIdleTimeout: setting({
    section: 'Workers',
    type: seconds(1, { max: 86_400 }),
    default: 30,
    doc: 'With a range of workers: how long one worker fewer must have been enough (the load fits in the others at half of scale-up-busy) before one is drained, politely, down to the minimum; again after each change.',
  }),
  timeout: setting({
    section: 'Workers',
    type: seconds(1, { zeroDisables: true }),
    default: 30,
    doc: 'A serving worker silent for this long (event loop blocked) is killed and replaced.',
  }),
  bootTimeout: setting({
    section: 'Workers',
    type: seconds(1),
    default: 60,
    doc: 'A worker not ready this long after it was started (app load and init) is killed; counts as a failed boot.',
  }),
  gracefulTimeout: setting({
    section: 'Workers',
    type: seconds(0),
    default: 30,
    doc: 'How long a draining worker may finish in-flight requests before it is killed.',
  }),
  shutdownDelay: setting({
    section: 'Workers',
    type: seconds(0, { max: 3600 }),
    default: 0,
    doc: 'On TERM or QUIT, first turn not ready (`/readyz` answers 503) while still accepting and serving for this long, then drain: time for a load balancer or Kubernetes to stop sending (see docs/fleet.md). 0: drain at once.',
  }),
  stopBudget: setting({
    section: 'Workers',
    type: seconds(1, { zeroDisables: true }),
    default: 0,
    doc: 'How long the supervisor waits for a stop before it kills (systemd TimeoutStopSec=, Kubernetes terminationGracePeriodSeconds, docker stop --time). When set, corral warns at start and reload if shutdown-delay + graceful-timeout does not fit in it. scripts/install sets it from the unit\'s TimeoutStopSec=. 0: unknown, no check.',
  }),
  closeSpread: setting({
    section: 'Workers',
    type: seconds(0, { max: 3600 }),
    default: 5,
    doc: 'When a worker drains, the WebSockets and Server-Sent Event streams its app left open are ended by corral at random moments spread over this window, so their clients do not all reconnect at once (see docs/long-lived.md). Capped at half of graceful-timeout; 0: all at once.',
  }),
  websocketCloseReload: setting({
    section: 'Workers',
    type: integer(1000, 4999),
    default: 1012,
    doc: 'Close code corral sends to a WebSocket it ends at a reload, a recycle (max-requests, max-memory) or a scale-down (1012: service restart, the client should reconnect).',
  }),
  websocketCloseStop: setting({
    section: 'Workers',
    type: integer(1000, 4999),
    default: 1001,
    doc: 'Close code corral sends to a WebSocket it ends at a stop (TERM, QUIT) (1001: going away).',
  }),
  maxRequests: setting({
    section: 'Workers',
    type: integer(0),
    default: 0,
    doc: 'Replace a worker after it has served this many requests (0 disables). The replacement starts before the old one drains.',
  }),
  maxRequestsJitter: setting({
    section: 'Workers',
    type: integer(0),
    default: 0,
    doc: 'Add a random 0..N to max-requests per worker so workers do not all recycle at once.',
  }),
  maxMemory: setting({
    section: 'Workers',
    type: bytes({ zeroDisables: true }),
    default: 0,
    doc: 'Replace a worker whose resident memory (RSS) exceeds this size (e.g. 512M; 0 disables).',
  }),
  warmupRequests: setting({
    section: 'Workers',
    type: list(text('PATH', (s) => (s.startsWith('/') ? undefined : 'must be a path starting with /, such as /healthz'))),
    default: [],
    defaultDoc: 'none',
    doc: 'Paths a new worker requests from itself (GET, through its own servers, with the header `corral-warmup: 1`) after init and before it takes any connection, each warmup-count times, so its first clients meet warm code; repeat or separate with commas. Each must answer 2xx or 3xx within boot-timeout, or the worker failed to boot (E_WARMUP). Not written to the access log, not counted in metrics or max-requests (see docs/warm-workers.md).',
  }),
  warmupCount: setting({
    section: 'Workers',
    type: integer(1, 10000),
    default: 1,
    doc: 'How many times a new worker requests each of warmup-requests, one after the other.',
  }),
  compileCache: setting({
    section: 'Workers',
    type: text('auto|off|DIR'),
    default: 'auto',
    doc: 'Where workers keep Node\'s module compile cache, so a new generation starts from the code its predecessors compiled (Node 22.1 and later; ignored on Node 20): `auto` is compile-cache/ in systemd\'s CACHE_DIRECTORY, STATE_DIRECTORY or RUNTIME_DIRECTORY (the first set), else corral-compile-cache-UID in the temp directory; `off`: none; or a directory (relative paths are from the working directory). See docs/warm-workers.md.',
  }),
  keepAliveBalance: setting({
    section: 'Workers',
    type: boolean(),
    default: true,
    doc: 'Spread keep-alive connections evenly: a worker holding more than its share of reused connections closes some after their next response, and the clients reconnect (see bench/DISTRIBUTION.md). Off: connections stay where they were accepted.',
  }),
  workerNodeOptions: setting({
    section: 'Workers',
    type: text('OPTIONS', nodeOptionsProblem),
    default: '',
    defaultDoc: 'none',
    doc: 'Node.js options for the workers only, written as NODE_OPTIONS is (e.g. `--import ./instrumentation.mjs`, relative to the working directory), given to each worker\'s node before corral\'s own code runs: an `--import` here loads before the worker loads node:http, as OpenTelemetry needs (see docs/tracing.md). Only options NODE_OPTIONS accepts. A change applies to the workers started from then on (HUP).',
  }),
  keepAliveTimeout: setting({
    section: 'HTTP',
    type: seconds(1),
    default: 75,
    doc: 'Idle keep-alive connections are closed after this long; keep it above the proxy\'s (nginx and cloud balancers: 60 s) so the proxy closes first.',
  }),
  headersTimeout: setting({
    section: 'HTTP',
    type: seconds(1),
    default: 60,
    doc: 'Time allowed to receive a request\'s complete headers.',
  }),
  requestTimeout: setting({
    section: 'HTTP',
    type: seconds(1, { zeroDisables: true }),
    default: 300,
    doc: 'Time allowed to receive a whole request (headers and body); 0 disables.',
  }),
  maxHeaderSize: setting({
    section: 'HTTP',
    // Node and llhttp accept any size (http.createServer's maxHeaderSize has no upper
    // bound), but every connection may buffer this much while its headers arrive; 1 MiB
    // is far above what proxies forward (nginx: 4 buffers of 8 KiB by default).
    type: bytes({ min: 1024, max: 1024 ** 2 }),
    default: 16384,
    doc: 'Largest accepted size of a request\'s headers (larger: 431); at most 1M.',
  }),
  forwardedAllowIps: setting({
    section: 'HTTP',
    type: trustedList,
    default: ['loopback', 'unix'],
    doc: 'The proxies whose X-Forwarded-For (or Forwarded) is believed: addresses, CIDR ranges, `loopback`, `linklocal`, `uniquelocal`, `unix` (unix-socket peers); `none`: no one. From them the client address is found by walking the header from the nearest hop to the first address not listed (see docs/proxies.md).',
  }),
  forwardedHeaders: setting({
    section: 'HTTP',
    type: oneOf(['drop-untrusted', 'keep'] as const),
    default: 'drop-untrusted',
    doc: 'What the app sees of X-Forwarded-For, Forwarded, X-Forwarded-Proto/-Host/-Port and X-Real-IP sent by a peer not in forwarded-allow-ips: `drop-untrusted` removes them, so a client cannot forge them; `keep` passes them on.',
  }),
  config: setting({
    section: 'Config',
    type: optionalText('PATH'),
    default: undefined,
    defaultDoc: 'corral.config.{mjs,js,cjs,json} in the working directory, if present',
    doc: 'Config file to read.',
    notInFile: true,
  }),
  envFile: setting({
    section: 'Config',
    type: text('PATH'),
    default: '.env',
    doc: 'Environment file (dotenv syntax) for corral and the app; never overrides the real environment. Read at start and on HUP.',
    notInFile: true,
  }),
  hookTimeout: setting({
    section: 'Config',
    type: seconds(0.1, { max: 3600 }),
    default: 10,
    doc: 'How long one call of a lifecycle hook of the config file may run before it is abandoned and logged (E_HOOK_TIMEOUT); the master never waits longer for one (see docs/hooks.md).',
  }),
  accessLog: setting({
    section: 'Logs',
    type: text('-|PATH|off'),
    default: '-',
    doc: 'Access log: `-` for stdout (journald under systemd), a file (relative paths are in log-dir), or `off`. With log-dir set and this left at its default: log-dir/access.log.',
    reloadable: false,
  }),
  accessLogFormat: setting({
    section: 'Logs',
    type: text('FORMAT', (s) => {
      try {
        compileAccessFormat(s);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    }),
    default: 'json',
    doc: 'Access log format: `json`, `combined`, `common`, or a template such as `{method} {url} {status} {duration}ms {req.x-tenant}` (see docs/logging.md).',
  }),
  errorLog: setting({
    section: 'Logs',
    type: text('-|PATH'),
    default: '-',
    doc: 'Error log: `-` for stderr (journald under systemd) or a file (relative paths are in log-dir). With log-dir set and this left at its default: log-dir/error.log.',
    reloadable: false,
  }),
  logLevel: setting({
    section: 'Logs',
    type: oneOf(LOG_LEVEL_CHOICES),
    default: 'info',
    doc: 'Lowest level written to the error log.',
  }),
  logDir: setting({
    section: 'Logs',
    type: optionalText('DIR'),
    default: undefined,
    doc: 'Directory for the log files; systemd\'s LOGS_DIRECTORY (LogsDirectory=) is honoured. Must exist and be writable.',
    envAliases: [{ name: 'LOGS_DIRECTORY', map: (raw) => raw.split(':')[0] }],
    reloadable: false,
  }),
  logFormat: setting({
    section: 'Logs',
    type: oneOf(['auto', 'json', 'pretty'] as const),
    default: 'auto',
    doc: 'Error log lines as JSON, or human-readable; `auto` is pretty on a terminal and JSON elsewhere.',
    reloadable: false,
  }),
  logSyslogPrefix: setting({
    section: 'Logs',
    type: oneOf(['auto', 'on', 'off'] as const),
    default: 'auto',
    doc: 'Start stdout/stderr lines with `<N>` syslog priorities so `journalctl -p err` filters by level; `auto` is on when the stream is connected to journald (JOURNAL_STREAM).',
    reloadable: false,
  }),
  logRotateSize: setting({
    section: 'Logs',
    type: bytes({ zeroDisables: true }),
    default: 0,
    doc: 'Built-in rotation: start a new numbered file (access.1.log, access.2.log, ...) when the current one reaches this size (0 disables).',
    reloadable: false,
  }),
  logRotateInterval: setting({
    section: 'Logs',
    type: oneOf(['off', 'hourly', 'daily'] as const),
    default: 'off',
    doc: 'Built-in rotation: start a new numbered file every hour or day.',
    reloadable: false,
  }),
  logRotateKeep: setting({
    section: 'Logs',
    type: integer(1, 10000),
    default: 10,
    doc: 'Built-in rotation: rotated files kept besides the current one; older ones are deleted.',
    reloadable: false,
  }),
  logWriteErrorInterval: setting({
    section: 'Logs',
    type: seconds(1),
    default: 60,
    doc: 'A log file that cannot be written (disk full, ...) is reported on stderr at most once per this interval, and reopened; lines meanwhile are counted and dropped. Serving goes on.',
    reloadable: false,
  }),
  captureOutput: setting({
    section: 'Logs',
    type: boolean(),
    default: true,
    doc: 'Capture the app\'s stdout and stderr (console.*) into the error log, one entry per line attributed to its worker (stdout as info, stderr as error).',
  }),
  slowRequestThreshold: setting({
    section: 'Logs',
    type: seconds(0.001, { zeroDisables: true }),
    default: 1,
    doc: 'Requests slower than this are also logged as warnings in the error log (0 disables).',
  }),
} satisfies Record<string, Setting<never> | Setting<unknown>>;

export type SettingName = keyof typeof SETTINGS;
type ValueOf<S> = S extends Setting<infer T> ? T : never;

/** Every setting resolved: what the master and workers run with. */
export type ResolvedConfig = { -readonly [K in SettingName]: ValueOf<(typeof SETTINGS)[K]> };

/** What a config file may contain: every field optional, and the lifecycle hooks (docs/hooks.md). */
export type CorralConfig = Partial<Omit<ResolvedConfig, 'config' | 'envFile'>> & { hooks?: CorralHooks };

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

export function envName(name: string): string {
  return 'CORRAL_' + name.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

export function settingOf(name: SettingName): Setting<unknown> {
  return SETTINGS[name] as Setting<unknown>;
}

/** Rules that tie two settings together; each message states the rule. */
export function crossCheck(cfg: ResolvedConfig): Array<{ name: SettingName; message: string }> {
  const out: Array<{ name: SettingName; message: string }> = [];
  if (cfg.requestTimeout !== 0 && cfg.headersTimeout > cfg.requestTimeout) {
    out.push({ name: 'headersTimeout', message: `${cfg.headersTimeout} is not valid: must not exceed request-timeout (${cfg.requestTimeout} s)` });
  }
  return out;
}

export { RuleError };
