/** The master's exit codes: a contract with systemd units and scripts (see docs/errors.md). */
export const EXIT = {
  OK: 0,
  UNEXPECTED: 1,
  WORKER_BOOT: 3,
  APP_LOAD: 4,
  CONFIG: 78, // EX_CONFIG from sysexits.h; the service unit does not restart on it
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * Exit codes a worker uses so the master can tell why it died before it could say so: the
 * same numbers as the master's exit for the same failure, so one table explains both.
 */
export const WORKER_EXIT = { APP_LOAD: EXIT.APP_LOAD, INIT: EXIT.WORKER_BOOT } as const;
