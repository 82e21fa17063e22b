import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

/** The repository root (tests run from dist/test/...). */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const CLI = resolve(ROOT, 'dist/src/cli.js');
const FIXTURES = resolve(ROOT, 'test/fixtures');
const APPS = resolve(FIXTURES, 'apps');
export const app = (name: string): string => resolve(APPS, name);
