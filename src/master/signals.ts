/**
 * The signals the master handles (each by its own handler in master.ts). Declared apart from
 * the runtime so the exit causes can name a signal without importing the runtime.
 */
export const HANDLED_SIGNALS = ['SIGHUP', 'SIGQUIT', 'SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGTTIN', 'SIGTTOU'] as const;
export type Sig = (typeof HANDLED_SIGNALS)[number];

/**
 * Signals that arrive after `corral serve` started the first workers and before the master's
 * loop listens (early-start.ts): a worker may answer by then, so a stop must be a stop, not
 * Node's default death of the master. They are held in order and handed to the loop.
 */
const held: Sig[] = [];
const holders = new Map<Sig, () => void>();

export function holdSignals(): void {
  for (const sig of HANDLED_SIGNALS) {
    if (holders.has(sig)) continue;
    const fn = (): void => void held.push(sig);
    holders.set(sig, fn);
    process.on(sig, fn);
  }
}

/** Stops holding and returns what was held, oldest first. */
export function releaseHeldSignals(): Sig[] {
  for (const [sig, fn] of holders) process.off(sig, fn);
  holders.clear();
  return held.splice(0);
}
