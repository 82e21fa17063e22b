/**
 * Where the master is in its life: booting its first generation, serving, or stopping (a
 * shutdown delay, a drain, a fast stop or a failed start). STATUS=, /readyz, /metrics and
 * `corral status` all read it.
 */
export type MasterPhase = 'starting' | 'running' | 'stopping';
