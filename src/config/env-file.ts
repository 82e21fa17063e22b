import { readFileSync } from 'node:fs';
import { parse } from 'dotenv';
import { CorralError } from '../errors.js';

/**
 * Reads an env file (dotenv syntax). A missing file is fine when it is only the default
 * `.env`; one named explicitly must exist.
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
  return parse(text);
}
