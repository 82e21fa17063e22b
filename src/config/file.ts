import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CorralError } from '../errors.js';

export const CONFIG_FILE_NAMES = ['corral.config.mjs', 'corral.config.js', 'corral.config.cjs', 'corral.config.json'];

/** The config file to read: the one named, or the first default name present in cwd. */
export function findConfigFile(named: string | undefined, cwd: string): string | undefined {
  if (named !== undefined) return resolve(cwd, named);
  return CONFIG_FILE_NAMES.map((n) => resolve(cwd, n)).find((p) => existsSync(p));
}

let generation = 0;

/**
 * Loads a config file. JS files may export an object or a function returning one (sync or
 * async). Loaded fresh each time, so HUP sees edits: the ESM cache is bypassed with a query
 * string and the CommonJS cache entry is dropped.
 */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  if (!existsSync(path)) throw new CorralError('E_CONFIG_FILE', `config file ${path} does not exist`);
  let value: unknown;
  try {
    if (extname(path) === '.json') {
      value = JSON.parse(readFileSync(path, 'utf8'));
    } else {
      const req = createRequire(path);
      delete req.cache[path];
      const mod = (await import(`${pathToFileURL(path).href}?v=${++generation}`)) as Record<string, unknown>;
      value = mod.default ?? mod;
      if (typeof value === 'function') value = await (value as () => unknown)();
    }
  } catch (err) {
    const reason = (err as Error)?.message?.split('\n')[0] ?? String(err);
    throw new CorralError('E_CONFIG_FILE', `config file ${path} cannot be loaded: ${reason}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CorralError('E_CONFIG_FILE', `config file ${path} must export an object of settings (got ${Array.isArray(value) ? 'an array' : typeof value})`);
  }
  return value as Record<string, unknown>;
}
