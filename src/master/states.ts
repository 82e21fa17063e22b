/**
 * Where the master is in its life: booting its first generation, serving, or stopping (a
 * shutdown delay, a drain, a fast stop or a failed start). STATUS=, /readyz, /metrics and
 * `corral status` all read it.
 */
export type MasterPhase = 'starting' | 'running' | 'stopping';

/**
 * Where one worker is in its life, as the master sees it: loading the app, serving, asked to
 * be replaced (serving until its successor is ready), draining, or gone.
 */
export type WorkerState = 'booting' | 'ready' | 'retiring' | 'draining' | 'dead';
