import { Option, type Command } from 'commander';
import { SETTING_NAMES, envName, kebab, settingOf, type SettingName } from './config/settings.js';

/** Settings that are not flags (the app is the positional argument). */
const NOT_FLAGS = new Set<SettingName>(['app']);

export function defaultText(name: SettingName): string {
  const s = settingOf(name);
  if (s.defaultDoc) return s.defaultDoc;
  const d = s.default;
  if (d === undefined) return '(unset)';
  return s.type.show(d);
}

/** Adds one option per setting, generated from the table; values stay raw strings for the layers. */
export function addSettingOptions(cmd: Command): Command {
  for (const name of SETTING_NAMES) {
    if (NOT_FLAGS.has(name)) continue;
    const s = settingOf(name);
    const flags = `${s.short ? `-${s.short}, ` : ''}--${kebab(name)} <${s.type.arg}>`;
    const opt = new Option(flags, `${s.doc} [env ${envName(name)}; default: ${defaultText(name)}]`);
    if (name === 'bind') opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(opt);
  }
  return cmd;
}

/** The command-line layer: only what was given, keyed by setting name. */
export function cliLayer(opts: Record<string, unknown>, app: string | undefined): Partial<Record<SettingName, unknown>> {
  const out: Partial<Record<SettingName, unknown>> = {};
  for (const name of SETTING_NAMES) if (opts[name] !== undefined) out[name] = opts[name];
  if (app !== undefined) out.app = app;
  return out;
}

