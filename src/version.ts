import { readFileSync } from 'node:fs';

/** corral's version, from its package.json (two levels above dist/src/); "unknown" when that cannot be read. */
export function corralVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
