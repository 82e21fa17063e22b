/**
 * The signals the master handles (each by its own handler in master.ts). Declared apart from
 * the runtime so the exit causes can name a signal without importing the runtime.
 */
export const HANDLED_SIGNALS = ['SIGHUP', 'SIGQUIT', 'SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGTTIN', 'SIGTTOU'] as const;
export type Sig = (typeof HANDLED_SIGNALS)[number];
