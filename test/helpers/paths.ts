import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

/** The repository root (tests run from dist/test/...). */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const CLI = resolve(ROOT, 'dist/src/cli.js');
export const FIXTURES = resolve(ROOT, 'test/fixtures');
export const APPS = resolve(FIXTURES, 'apps');
export const app = (name: string): string => resolve(APPS, name);
