import { EXIT, type ExitCode } from './exit-codes.js';

interface ErrorDeclaration {
  exit: ExitCode;
  /** A second exit code the error may carry, and when (documented beside the first). */
  alsoExit?: { code: ExitCode; when: string };
  doc: string;
}

/**
 * Every user-facing error, declared once. Codes are stable: never rename or reuse one.
 * docs/errors.md is generated from this table and a test keeps the two in step.
 */
export const ERROR_CODES = {
  E_CONFIG_VALUE: { exit: EXIT.CONFIG, doc: 'A setting, or a command\'s argument (a PID, `--timeout`), has a value that breaks its rule; the message names the setting, where it came from, the value and the rule.' },
  E_CONFIG_UNKNOWN: { exit: EXIT.CONFIG, doc: 'A config file or the environment names a setting that does not exist.' },
  E_CONFIG_FILE: { exit: EXIT.CONFIG, doc: 'The config file cannot be read or parsed, does not export an object, throws while its settings are read, or does not finish loading within 10 s.' },
  E_ENV_FILE: { exit: EXIT.CONFIG, doc: 'The env file named with --env-file cannot be read.' },
  E_WORKER_ENV: { exit: EXIT.CONFIG, doc: 'No worker could be started with this environment: a variable (in the env file, say) holds a NUL byte, or the variables and the workers\' settings exceed what the kernel passes to a new process (execve(2), E2BIG: 128 KiB for one variable, a quarter of the stack limit for all). At a reload, the reload fails and the old workers keep serving.' },
  E_BIND_IN_USE: { exit: EXIT.CONFIG, doc: 'Another process already listens on the address; stop it or choose another port.' },
  E_BIND_DENIED: { exit: EXIT.CONFIG, doc: 'The address cannot be bound for lack of permission (ports below 1024 need root or CAP_NET_BIND_SERVICE; use socket activation).' },
  E_BIND_FAILED: { exit: EXIT.CONFIG, doc: 'The address cannot be bound for another reason (address not on this host, path not writable, ...).' },
  E_LISTEN_FDS: { exit: EXIT.CONFIG, doc: 'LISTEN_FDS, LISTEN_PID or LISTEN_FDNAMES are malformed, or a passed descriptor (from systemd or `--bind fd://N`) is not a stream socket to accept connections on (UDP, a connection, unbound).' },
  E_TLS_FILE: { exit: EXIT.CONFIG, doc: 'A TLS file (tls-cert, tls-key, tls-client-ca) is missing, unreadable by the user corral runs as, or not PEM (or the key is encrypted). At a reload or a file change, the change is refused and the current certificate keeps serving.' },
  E_TLS_CERT: { exit: EXIT.CONFIG, doc: 'The certificate and key do not make a usable pair: the key is not the certificate\'s, the certificate has expired, a certificate of the chain cannot be parsed, or OpenSSL refuses them. At a reload or a file change, the change is refused and the current certificate keeps serving.' },
  E_NO_APP: { exit: EXIT.CONFIG, doc: 'No app was given: pass APP[:EXPORT] or set `app` in the config file or CORRAL_APP.' },
  E_APP_LOAD: { exit: EXIT.APP_LOAD, doc: 'The app module does not exist or cannot be imported (it throws, or a module it imports is missing), or its factory throws.' },
  E_APP_EXPORT: { exit: EXIT.APP_LOAD, doc: 'The module has no default export (or not the export named in APP:EXPORT); the message lists what it exports and, when one of them is an app, says which to name.' },
  E_APP_SHAPE: { exit: EXIT.APP_LOAD, doc: 'The export is not an app corral can serve; the message says what it is (its type, an object\'s keys) and the nearest shape corral accepts (README, "What counts as an app").' },
  E_APP_LISTENING: { exit: EXIT.APP_LOAD, doc: 'The app listens by itself: its export is a server already listening, or the module made a server listen while it loaded (`app.listen(3000)`, hapi\'s `server.start()`). corral owns the sockets: export the app (or the server, not started) and leave listening to corral.' },
  E_WORKER_BOOT: { exit: EXIT.WORKER_BOOT, doc: 'Workers kept failing to boot (crashed or timed out before ready) at start.' },
  E_WARMUP: { exit: EXIT.WORKER_BOOT, doc: 'A warm-up request (warmup-requests) did not answer 2xx or 3xx: another status, a handler that threw, a broken connection, or no answer before boot-timeout ran out. The worker failed to boot; at start the master stops (the same answer would come at every retry), at a reload the reload fails and the old workers keep serving.' },
  E_NOTIFY: { exit: EXIT.CONFIG, doc: 'NOTIFY_SOCKET is set but notifications cannot be sent (the sd-notify addon is missing or the socket is unreachable).' },
  E_LOG_PATH: { exit: EXIT.CONFIG, doc: 'A log file or log directory is missing or not writable by the user corral runs as.' },
  E_RELOAD_TARGET: { exit: EXIT.UNEXPECTED, doc: '`corral reload` was given a PID that is not a running corral master (no control socket that PID\'s user owns answers for it), or one it may not signal; nothing was signalled.' },
  E_RELOAD_FAILED: { exit: EXIT.UNEXPECTED, doc: 'The reload failed: the new generation did not boot; the old one keeps serving.' },
  E_RELOAD_TIMEOUT: { exit: EXIT.UNEXPECTED, doc: '`corral reload --wait` gave up before the reload finished.' },
  E_STATUS_TARGET: { exit: EXIT.UNEXPECTED, doc: '`corral status` found no corral master to ask (give its PID or --name), its control socket is not one that PID\'s user owns, or it did not answer with a well-formed status for that PID.' },
  E_UNHEALTHY: { exit: EXIT.UNEXPECTED, doc: '`corral health`: the metrics listener did not answer 200 on /livez (or /readyz with --ready), could not be reached, or no address is configured (metrics-bind); or what answered is not corral\'s metrics listener (no `corral-health` header: the app\'s own port?).' },
  E_HOOK_FAILED: { exit: EXIT.WORKER_BOOT, doc: 'A lifecycle hook of the config file threw or rejected (docs/hooks.md); the log line names the hook. A master hook\'s failure is logged and the master goes on: it never stops, stalls or changes its exit code. A `workerBoot` failure fails that worker\'s boot (it exits 3; at start, three failed boots in a row stop the master with exit 3; at a reload, the reload is rolled back). A `workerStopping` failure is logged and the drain goes on.' },
  E_HOOK_TIMEOUT: { exit: EXIT.WORKER_BOOT, doc: 'A lifecycle hook did not settle within hook-timeout: it is abandoned (its `signal` aborts) and, as for E_HOOK_FAILED, the master goes on, a `workerBoot` hook fails the worker\'s boot, and a drain goes on.' },
  E_HOOK_BACKLOG: { exit: EXIT.OK, doc: 'Calls of one master hook (say `workerExited` while many workers exit and the hook is slow) pile up: past 100 pending, each new one is dropped and logged, so a slow hook cannot grow the master\'s memory. Nothing stops.' },
  E_CHECK_FAILED: { exit: EXIT.CONFIG, alsoExit: { code: EXIT.APP_LOAD, when: 'when the app cannot be loaded' }, doc: '`corral check` found a problem; each is listed above this line.' },
} as const satisfies Record<string, ErrorDeclaration>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes of an app that cannot be loaded (exit 4): the worker names one, the master stops with it. */
export type AppLoadCode = 'E_APP_LOAD' | 'E_APP_EXPORT' | 'E_APP_SHAPE' | 'E_APP_LISTENING';

/** A code a worker sent is one of the app-load codes (a worker's message is not trusted). */
export function isAppLoadCode(v: unknown): v is AppLoadCode {
  return v === 'E_APP_LOAD' || v === 'E_APP_EXPORT' || v === 'E_APP_SHAPE' || v === 'E_APP_LISTENING';
}

/** An error meant for the operator: printed as one line, no stack, with a stable code. */
export class CorralError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; exitCode?: ExitCode }) {
    super(message, options);
    this.name = 'CorralError';
    this.code = code;
    const decl: ErrorDeclaration = ERROR_CODES[code];
    const wanted = options?.exitCode;
    if (wanted !== undefined && wanted !== decl.exit && wanted !== decl.alsoExit?.code) {
      throw new Error(`${code} is not declared with exit code ${wanted} (src/errors.ts)`);
    }
    this.exitCode = wanted ?? decl.exit;
  }
}

export function isCorralError(err: unknown): err is CorralError {
  return err instanceof CorralError;
}
