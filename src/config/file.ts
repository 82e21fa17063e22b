import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CorralError } from '../errors.js';

const CONFIG_FILE_NAMES = ['corral.config.mjs', 'corral.config.js', 'corral.config.cjs', 'corral.config.json'];

/** The config file to read: the one named, or the first default name present in cwd. */
export function findConfigFile(named: string | undefined, cwd: string): string | undefined {
  if (named !== undefined) return resolve(cwd, named);
  return CONFIG_FILE_NAMES.map((n) => resolve(cwd, n)).find((p) => existsSync(p));
}

let generation = 0;

/**
 * How long a config file may take to load. A module whose top-level await or exported
 * promise never settles would otherwise hang start (Node exits 0 once nothing else is
 * pending) or jam every later reload. A fixed constant rather than a setting: the limit
 * would have to be given outside the file it bounds, and 10 s is far above what building
 * an object of settings takes, even one that reads a secret over the network first.
 */
const CONFIG_LOAD_TIMEOUT_MS = 10_000;

/**
 * Loads a config file. JS files may export an object or a function returning one (sync or
 * async). Loaded fresh each time, so HUP sees edits: the ESM cache is bypassed with a query
 * string and the CommonJS cache entry is dropped. The values are copied into a plain object
 * here, so a getter that throws is a config error and not a crash later on.
 */
export async function loadConfigFile(path: string, timeoutMs = CONFIG_LOAD_TIMEOUT_MS): Promise<Record<string, unknown>> {
  if (!existsSync(path)) throw new CorralError('E_CONFIG_FILE', `config file ${path} does not exist`);
  try {
    return plainCopy(await withTimeout(readValue(path), timeoutMs, path), path);
  } catch (err) {
    if (err instanceof CorralError) throw err;
    throw new CorralError('E_CONFIG_FILE', `config file ${path} cannot be loaded: ${reasonOf(err)}`, { cause: err });
  }
}

/** The settings as a plain object; getters run here, inside the caller's error handling. */
function plainCopy(value: unknown, path: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CorralError('E_CONFIG_FILE', `config file ${path} must export an object of settings (got ${Array.isArray(value) ? 'an array' : typeof value})`);
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = (value as Record<string, unknown>)[key];
  return out;
}

async function readValue(path: string): Promise<unknown> {
  if (extname(path) === '.json') return JSON.parse(readFileSync(path, 'utf8'));
  const req = createRequire(path);
  delete req.cache[path];
  const mod = (await import(`${pathToFileURL(path).href}?v=${++generation}`)) as Record<string, unknown>;
  const value = mod.default ?? mod;
  return typeof value === 'function' ? await (value as () => unknown)() : value;
}

/**
 * Settles with `work` or fails after `ms`. The timer is deliberately left referenced: a
 * promise that never settles does not keep the event loop alive, so without it Node would
 * exit quietly before the error could be reported.
 */
function withTimeout<T>(work: Promise<T>, ms: number, path: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CorralError('E_CONFIG_FILE', `config file ${path} did not finish loading within ${ms / 1000} s (a top-level await or the promise it exports never settles?)`));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}
