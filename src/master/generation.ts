import type { Resolution } from '../config/resolve.js';

/** Backoff before respawning a slot after its n-th consecutive failure (ms). */
export function backoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(30_000, 500 * 2 ** (failures - 1));
}

/** A worker that served at least this long before dying clears its slot's failure count. */
export const HEALTHY_RUN_MS = 10_000;

/** One set of workers started together from one configuration (start, or a HUP). */
export class Generation {
  #target: number;
  /** Consecutive boot failures or quick crashes, per slot. */
  private readonly failures = new Map<number, number>();
  /** Earliest time a slot may be respawned, per slot. */
  private readonly notBefore = new Map<number, number>();

  constructor(
    readonly id: number,
    readonly resolution: Resolution,
  ) {
    this.#target = resolution.config.workers;
  }

  /** How many workers it should have: `workers`, changed by TTIN/TTOU. */
  get target(): number {
    return this.#target;
  }

  /** One slot more (TTIN) or less (TTOU); never below one. */
  scale(by: 1 | -1): void {
    this.#target = Math.max(1, this.#target + by);
  }

  get config() {
    return this.resolution.config;
  }

  recordFailure(slot: number, now: number): number {
    const n = (this.failures.get(slot) ?? 0) + 1;
    this.failures.set(slot, n);
    this.notBefore.set(slot, now + backoffMs(n));
    return n;
  }

  clearFailures(slot: number): void {
    this.failures.delete(slot);
    this.notBefore.delete(slot);
  }

  mayRespawn(slot: number, now: number): boolean {
    return (this.notBefore.get(slot) ?? 0) <= now;
  }

  /** The earliest back-off still running out after `now`, or Infinity. */
  nextRespawnAt(now: number): number {
    let next = Infinity;
    for (const t of this.notBefore.values()) if (t > now) next = Math.min(next, t);
    return next;
  }
}
