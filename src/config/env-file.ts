import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CorralError } from '../errors.js';

const require = createRequire(import.meta.url);

/**
 * Reads an env file (dotenv syntax). A missing file is fine when it is only the default
 * `.env`; one named explicitly must exist. dotenv is loaded only when there is a file to
 * parse: under systemd the environment usually comes from EnvironmentFile= instead, and the
 * master stays smaller without it.
 */
export function readEnvFile(path: string, explicit: boolean): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return {};
    throw new CorralError('E_ENV_FILE', `env file ${path} cannot be read (${code ?? (err as Error).message}); create it or point --env-file elsewhere`, { cause: err });
  }
  const { parse } = require('dotenv') as typeof import('dotenv');
  return parse(text);
}
