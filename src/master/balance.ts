import type { WorkerHandle } from './worker-handle.js';

/** The most kept connections a worker may hold: its fair share plus slack, so small differences are left alone. */
function shareLimit(fair: number): number {
  return Math.ceil(fair + Math.max(2, Math.ceil(0.1 * fair)));
}

/** How often the master may recompute the balance of kept connections. */
const BALANCE_MS = 50;

/**
 * Keep-alive balance. Workers accept directly, so a burst of new connections can land
 * mostly on one worker and stay there. From one snapshot of every serving worker's count of
 * kept connections the master computes the fair share and tells a worker above it the
 * limit to come down to (null: not over); an over worker answers some of its kept clients with Connection: close, and they
 * reconnect. Churn (one request per connection) is never counted, so it is never disturbed.
 */
export class Balancer {
  private dirty = false;
  private anyOver = false;
  private last = 0;

  noteReport(): void {
    this.dirty = true;
  }

  /** The next time a recompute is due, or Infinity when nothing changed. */
  nextAt(): number {
    return this.dirty || this.anyOver ? this.last + BALANCE_MS : Infinity;
  }

  run(serving: WorkerHandle[], now: number): void {
    if (now < this.last + BALANCE_MS || !(this.dirty || this.anyOver)) return;
    this.last = now;
    this.dirty = false;
    if (serving.length < 2 || serving.some((w) => w.kept === null)) {
      this.anyOver = false;
      return;
    }
    const total = serving.reduce((sum, w) => sum + (w.kept ?? 0), 0);
    const limit = shareLimit(total / serving.length);
    this.anyOver = false;
    for (const w of serving) {
      const over = (w.kept ?? 0) > limit;
      this.anyOver ||= over;
      w.send({ t: 'balance', limit: over ? limit : null });
    }
  }
}
