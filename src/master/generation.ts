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
  #min: number;
  #max: number;
  /** Consecutive boot failures or quick crashes, per slot. */
  private readonly failures = new Map<number, number>();
  /** Earliest time a slot may be respawned, per slot. */
  private readonly notBefore = new Map<number, number>();

  /**
   * `start`: how many workers it starts with, kept within its range (a reload starts with
   * the count serving before it); the range's minimum when absent.
   */
  constructor(
    readonly id: number,
    readonly resolution: Resolution,
    start?: number,
  ) {
    this.#min = resolution.config.workers.min;
    this.#max = resolution.config.workers.max;
    this.#target = Math.min(this.#max, Math.max(this.#min, start ?? this.#min));
  }

  /** How many workers it should have now: within its range, moved by load or by TTIN/TTOU. */
  get target(): number {
    return this.#target;
  }

  /** The range it scales within: `workers`, shifted by TTIN/TTOU. */
  get min(): number {
    return this.#min;
  }

  get max(): number {
    return this.#max;
  }

  /**
   * TTIN (+1) or TTOU (-1): one worker more or fewer now, and the whole range shifted with
   * it, so a fixed count stays fixed at its new value; never below one.
   */
  scale(by: 1 | -1): void {
    this.#min = Math.max(1, this.#min + by);
    this.#max = Math.max(this.#min, this.#max + by);
    this.#target = Math.min(this.#max, Math.max(this.#min, this.#target + by));
  }

  /** The load's decision: a new count, kept within the range. */
  resize(n: number): void {
    this.#target = Math.min(this.#max, Math.max(this.#min, n));
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
