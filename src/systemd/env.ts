/** Socket activation's variables (sd_listen_fds(3)). */
export const LISTEN_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'] as const;

/** The notification socket and the watchdog (sd_notify(3), sd_watchdog_enabled(3)). */
const NOTIFY_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/**
 * Variables only the master may see: workers must not talk to systemd, inherit its watchdog,
 * or take sockets meant for the master.
 */
export const MASTER_ONLY_ENV = [...NOTIFY_ENV, ...LISTEN_ENV] as const;

/** Removes `names` from env, in place. */
export function unsetEnv(env: NodeJS.ProcessEnv, names: readonly string[]): void {
  for (const k of names) delete env[k];
}

/** A copy of env without what only the master may see. */
export function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  unsetEnv(out, MASTER_ONLY_ENV);
  return out;
}
