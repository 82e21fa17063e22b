/** The public API: types for config files and `defineConfig` for editor help. */
import type { CorralConfig, ResolvedConfig } from './config/settings.js';

export type { CorralConfig, ResolvedConfig };
/** What an app's `init` export receives, and the reasons its drain signal carries (docs/long-lived.md). */
export type { InitContext } from './worker/app-shape.js';
export type { DrainReason } from './ipc/messages.js';
/** Lifecycle hooks (`defineConfig({ hooks: { ... } })`) and what each receives (docs/hooks.md). */
export type {
  CorralHooks, HookContext, MasterStartedEvent, GenerationReadyEvent, ReloadEndedEvent, WorkerExitedEvent,
  MasterExitingEvent, WorkerBootEvent, WorkerStoppingEvent,
} from './config/hooks.js';
export type { StopCause, RetireCause } from './master/exit-cause.js';
export type { ExitReason } from './metrics/definitions.js';
export { ERROR_CODES, CorralError } from './errors.js';
export { EXIT } from './exit-codes.js';

/** Identity function: `export default defineConfig({ workers: 4 })` gets completion and checks. */
export function defineConfig(config: CorralConfig): CorralConfig {
  return config;
}
