/** The answers of /livez and /readyz, from the master's latest picture (never from a worker). */
import type { MasterPhase } from '../master/states.js';

/** The master loop ticks at least every second; silent this long, it is not healthy. */
const LIVE_WINDOW_MS = 5000;

export interface HealthAnswer {
  ok: boolean;
  body: Record<string, unknown>;
}

/** Live while the master loop keeps ticking, whatever the app does. */
export function liveness(lastTickAt: number, now: number): HealthAnswer {
  const sinceMs = Math.max(0, Math.round(now - lastTickAt));
  return { ok: sinceMs < LIVE_WINDOW_MS, body: { live: sinceMs < LIVE_WINDOW_MS, lastTickMs: sinceMs } };
}

interface ReadinessInput {
  phase: MasterPhase;
  /** The generation that serves: its ready workers and how many it should have. */
  serving: { ready: number; target: number } | undefined;
  /** During a shutdown delay: how long until the drain starts (the workers still serve). */
  drainInMs?: number | undefined;
}

/**
 * Ready when the serving generation has all its workers ready and the master is not
 * stopping. During a reload the old generation serves until the new one is wholly ready,
 * and then the new one does: a reload never turns readiness off.
 */
export function readiness(s: ReadinessInput): HealthAnswer {
  const stopping = s.phase === 'stopping';
  const ready = s.serving ? `${s.serving.ready}/${s.serving.target}` : '0/0';
  const ok = !stopping && s.phase === 'running' && s.serving !== undefined && s.serving.ready >= s.serving.target;
  const body: Record<string, unknown> = { ready, stopping };
  if (s.phase === 'starting') body.starting = true;
  if (s.drainInMs !== undefined) body.shutdownDelay = { drainInS: Math.ceil(s.drainInMs / 1000) };
  return { ok, body };
}
