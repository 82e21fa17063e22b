import { describeSource, resolveConfig } from '../config/resolve.js';
import { SETTING_NAMES, kebab, settingOf, type SettingName } from '../config/settings.js';

/** `corral print-config`: every effective value and the layer it came from. */
export async function printConfig(cli: Partial<Record<SettingName, unknown>>, json: boolean): Promise<void> {
  const r = await resolveConfig({ cli, env: process.env, cwd: process.cwd() });
  const rows = SETTING_NAMES.map((name) => {
    const value = r.config[name] as never;
    return { name: kebab(name), value: settingOf(name).type.show(value), raw: value as unknown, source: describeSource(r.sources[name]) };
  });
  if (json) {
    const out = Object.fromEntries(rows.map((row) => [row.name, { value: row.raw ?? null, source: row.source }]));
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  const w1 = Math.max(...rows.map((row) => row.name.length));
  const w2 = Math.max(...rows.map((row) => row.value.length));
  for (const row of rows) process.stdout.write(`${row.name.padEnd(w1)}  ${row.value.padEnd(w2)}  ${row.source}\n`);
}
