import { resolveAppConfig } from '../config/resolve.js';
import type { SettingName } from '../config/settings.js';
import { withTerminalAccessFormat } from '../logging/terminal-access.js';
import { openLogs, startMaster } from './start-master.js';

/** `corral serve`: the master. */
export async function serve(cli: Partial<Record<SettingName, unknown>>): Promise<void> {
  // The environment as corral was started with, read again at each HUP.
  const env = { ...process.env };
  const cwd = process.cwd();
  const load = async () => withTerminalAccessFormat(await resolveAppConfig({ cli, env, cwd }), cwd);
  const resolution = await load();
  await startMaster({ resolution, load, logs: await openLogs(resolution, cwd), cwd });
}
