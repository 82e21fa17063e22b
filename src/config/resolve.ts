import { resolve as resolvePath } from 'node:path';
import { CorralError } from '../errors.js';
import { readEnvFile } from './env-file.js';
import { findConfigFile, loadConfigFile } from './file.js';
import { parseHooks, type Hooks } from './hooks.js';
import {
  RuleError, SETTING_NAMES, crossCheck, envName, kebab, settingOf, type ResolvedConfig, type SettingName,
} from './settings.js';
import { closest } from './suggest.js';

/** Where a value came from, lowest layer first. */
type Layer = 'default' | 'config file' | 'env file' | 'env' | 'command line';

export interface Source {
  layer: Layer;
  /** The exact place: the variable, flag or file. */
  detail: string;
}

export interface Resolution {
  config: ResolvedConfig;
  sources: Record<SettingName, Source>;
  configFile: string | undefined;
  envFile: string;
  /** Variables from the env file, for the workers' environment (the real environment wins). */
  envFileVars: Record<string, string>;
  /** The config file's lifecycle hooks (docs/hooks.md), checked; empty without a file. */
  hooks: Hooks;
}

export interface ResolveInput {
  /** Values given on the command line, by setting name; absent when not given. */
  cli: Partial<Record<SettingName, unknown>>;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Variables with the CORRAL_ prefix that are not settings but are still ours. */
const RESERVED_ENV = new Set(['CORRAL_WORKER']);

export function describeSource(s: Source): string {
  return s.layer === 'default' ? 'default' : `${s.layer} ${s.detail}`;
}

/** Resolves the settings of a command that serves an app (serve, dev, check): an app must be named. */
export async function resolveAppConfig(input: ResolveInput): Promise<Resolution> {
  const r = await resolveConfig(input);
  if (!r.config.app) {
    throw new CorralError('E_NO_APP', 'no app to serve: pass APP[:EXPORT] (e.g. `corral server.mjs`), or set `app` in the config file or CORRAL_APP');
  }
  return r;
}

/** Resolves every setting through the layers: defaults < config file < env file < env < command line. */
export async function resolveConfig(input: ResolveInput): Promise<Resolution> {
  const { cli, env, cwd } = input;
  const envFileRaw = (cli.envFile as string | undefined) ?? env.CORRAL_ENV_FILE;
  const envFile = resolvePath(cwd, envFileRaw ?? '.env');
  const envFileVars = readEnvFile(envFile, envFileRaw !== undefined);

  checkUnknownEnv(env, 'env');
  checkUnknownEnv(envFileVars, `env file ${envFile}`);

  const configNamed = (cli.config as string | undefined) ?? env.CORRAL_CONFIG ?? envFileVars.CORRAL_CONFIG;
  const configFile = findConfigFile(configNamed, cwd);
  const { hooks: hooksValue, ...fileValues } = configFile ? await loadConfigFile(configFile) : {};
  const hooks = parseHooks(hooksValue, configFile ?? '');
  checkFileKeys(fileValues, configFile ?? '');

  const config = {} as Record<SettingName, unknown>;
  const sources = {} as Record<SettingName, Source>;
  for (const name of SETTING_NAMES) {
    const picked = pick(name, cli, env, envFileVars, fileValues, configFile ?? '', envFile);
    sources[name] = picked.source;
    config[name] = parseValue(name, picked.raw, picked.source);
  }
  const resolved = config as ResolvedConfig;
  for (const problem of crossCheck(resolved)) {
    throw new CorralError('E_CONFIG_VALUE', `${kebab(problem.name)} (from ${describeSource(sources[problem.name])}): ${problem.message}`);
  }
  return { config: resolved, sources, configFile, envFile, envFileVars, hooks };
}

interface Picked {
  raw: unknown;
  source: Source;
}

function pick(
  name: SettingName,
  cli: Partial<Record<SettingName, unknown>>,
  env: NodeJS.ProcessEnv,
  envFileVars: Record<string, string>,
  fileValues: Record<string, unknown>,
  configFile: string,
  envFile: string,
): Picked {
  const s = settingOf(name);
  if (cli[name] !== undefined) return { raw: cli[name], source: { layer: 'command line', detail: `--${kebab(name)}` } };
  for (const [vars, layer, where] of [[env, 'env', ''], [envFileVars, 'env file', ` in ${envFile}`]] as const) {
    const own = vars[envName(name)];
    if (own !== undefined) return { raw: own, source: { layer, detail: envName(name) + where } };
    for (const alias of s.envAliases ?? []) {
      const v = vars[alias.name];
      if (v !== undefined && v !== '') {
        return { raw: alias.map ? mapAlias(name, alias.map, v, layer, alias.name + where) : v, source: { layer, detail: alias.name + where } };
      }
    }
  }
  if (name in fileValues) return { raw: fileValues[name], source: { layer: 'config file', detail: configFile } };
  const def = s.default;
  return { raw: typeof def === 'function' ? (def as () => unknown)() : def, source: { layer: 'default', detail: '' } };
}

function mapAlias(name: SettingName, map: (raw: string) => unknown, v: string, layer: Layer, detail: string): unknown {
  if (name === 'bind' && !/^\d{1,5}$/.test(v.trim())) {
    throw new CorralError('E_CONFIG_VALUE', `bind (from ${layer} ${detail}): ${JSON.stringify(v)} is not valid: PORT must be a port number from 0 to 65535`);
  }
  return map(v.trim());
}

function parseValue(name: SettingName, raw: unknown, source: Source): unknown {
  try {
    return settingOf(name).type.parse(raw);
  } catch (err) {
    if (err instanceof RuleError) throw new CorralError('E_CONFIG_VALUE', `${kebab(name)} (from ${describeSource(source)}): ${err.message}`);
    // A value from a config module can be any object; one whose conversion throws
    // (a toString that throws, an object without a prototype) is still bad input.
    const reason = err instanceof Error ? err.message : String(err);
    throw new CorralError('E_CONFIG_VALUE', `${kebab(name)} (from ${describeSource(source)}): the value cannot be read as a setting (${reason.split('\n')[0]})`, { cause: err });
  }
}

function checkFileKeys(values: Record<string, unknown>, file: string): void {
  for (const key of Object.keys(values)) {
    const known = (SETTING_NAMES as string[]).includes(key);
    if (known && settingOf(key as SettingName).notInFile) {
      throw new CorralError('E_CONFIG_UNKNOWN', `config file ${file}: '${key}' cannot be set in a config file (use --${kebab(key)} or ${envName(key)})`);
    }
    if (!known) {
      const hint = closest(key, SETTING_NAMES);
      throw new CorralError('E_CONFIG_UNKNOWN', `config file ${file}: unknown setting '${key}'${hint ? `; did you mean '${hint}'?` : ''} (settings are listed in docs/settings.md)`);
    }
  }
}

function checkUnknownEnv(vars: Record<string, string | undefined>, where: string): void {
  const known = SETTING_NAMES.map(envName);
  for (const key of Object.keys(vars)) {
    if (!key.startsWith('CORRAL_') || RESERVED_ENV.has(key) || known.includes(key)) continue;
    const hint = closest(key, known);
    throw new CorralError('E_CONFIG_UNKNOWN', `unknown setting ${key} in the ${where}${hint ? `; did you mean ${hint}?` : ''} (settings are listed in docs/settings.md)`);
  }
}
