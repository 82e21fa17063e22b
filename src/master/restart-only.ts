import { isDeepStrictEqual } from 'node:util';
import { kebab, SETTING_NAMES, settingOf, type ResolvedConfig } from '../config/settings.js';

/**
 * The warnings for a reload: one line per setting that changed in the configuration but is
 * applied only at start (`reloadable: false`), so the operator knows the new value is not
 * in effect. `running` is what the master started with: these settings keep it.
 */
export function restartOnlyWarnings(running: ResolvedConfig, next: ResolvedConfig): string[] {
  return SETTING_NAMES
    .filter((name) => settingOf(name).reloadable === false && !isDeepStrictEqual(running[name], next[name]))
    .map((name) => `${kebab(name)} changed in the configuration, but it needs a restart: the running value is kept until then`);
}
