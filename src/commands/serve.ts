import { resolveAppConfig } from '../config/resolve.js';
import type { SettingName } from '../config/settings.js';
import { withTerminalAccessFormat } from '../logging/terminal-access.js';
import { openLogs, startEarly } from './early-start.js';

/** `corral serve`: the master. */
export async function serve(cli: Partial<Record<SettingName, unknown>>): Promise<void> {
  // The environment as corral was started with, read again at each HUP.
  const env = { ...process.env };
  const cwd = process.cwd();
  const load = async () => withTerminalAccessFormat(await resolveAppConfig({ cli, env, cwd }), cwd);
  const resolution = await load();
  const logs = await openLogs(resolution, cwd);
  const early = await startEarly(resolution, logs, cwd);
  try {
    // Loaded while the first workers start (see early-start.ts).
    const { startMaster } = await import('./start-master.js');
    await startMaster({ resolution, load, logs, cwd, early });
  } finally {
    early.workers?.discard();
  }
}
