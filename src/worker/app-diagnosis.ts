/**
 * Words for an export corral cannot serve: what it is, and the nearest shape corral accepts.
 * Only for the error path: nothing here decides how an app is served.
 */
import { Server as NetServer } from 'node:net';
import { isHapiServer } from './hapi-adapter.js';

/** The shapes corral serves, as the errors list them (README, "What counts as an app"). */
export const SHAPES = 'a (req, res) handler, an Express/Connect/Koa/Fastify app, a hapi server, an object with fetch(request), or a factory function (no parameters) returning one';

const MAX_KEYS = 8;

/** Whether `v` is one of the shapes at a glance (a factory is not called to find out). */
export function looksServable(v: unknown): boolean {
  if (typeof v === 'function') return true;
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (isHapiServer(v)) return true;
  return typeof o.fetch === 'function' || (typeof o.callback === 'function' && typeof o.use === 'function')
    || (typeof o.routing === 'function' && typeof o.ready === 'function');
}

/** Names apps and their factories commonly go by. */
const APP_NAMES = /^(app|application|handler|handle|fetch|server|api|create(App|Server)|make(App|Server)|build(App|Server)?)$/i;

/**
 * An export worth suggesting as the app: an app object, a (req, res[, next]) function, or any
 * function by a name apps go by (a one-parameter helper would be a fetch handler in form only).
 */
export function likelyApp(name: string, v: unknown): boolean {
  if (!looksServable(v)) return false;
  return typeof v === 'object' || (v as () => void).length >= 2 || APP_NAMES.test(name);
}

/** A value's own keys, with what each holds when it is a function. */
function keysOf(o: object): string {
  const keys = Object.keys(o);
  const shown = keys.slice(0, MAX_KEYS).map((k) => (typeof (o as Record<string, unknown>)[k] === 'function' ? `${k}()` : k));
  return `[${shown.join(', ')}${keys.length > MAX_KEYS ? `, ... ${keys.length - MAX_KEYS} more` : ''}]`;
}

/** What the value is, in a few words. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return `a function with ${v.length} parameter${v.length === 1 ? '' : 's'}`;
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)})`;
  if (typeof v !== 'object') return `a ${typeof v} (${String(v)})`;
  if (v instanceof NetServer) return `a server (${v.constructor.name}) that is ${v.listening ? 'listening' : 'not listening'}`;
  if (v instanceof Promise) return 'a Promise';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  const name = Object.getPrototypeOf(v) === Object.prototype ? 'an object' : `an object (${v.constructor?.name ?? 'no prototype'})`;
  const keys = Object.keys(v);
  return keys.length === 0 ? `${name} with no keys` : `${name} with keys ${keysOf(v)}`;
}

/**
 * The nearest shape corral accepts, as advice ("export ... instead"), or undefined. `ref` is
 * the app reference as given (path), for a suggestion of APP:EXPORT.
 */
export function nearestShape(v: unknown, path: string): string | undefined {
  if (v instanceof Promise) return 'export the function that makes the app (corral awaits a factory\'s promise), not the promise it returns; or await it at the top level and export the result';
  if (v instanceof NetServer) {
    return 'corral makes its own servers: export the request handler you pass to createServer() (an Express app, a (req, res) function) instead of the server';
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  // An object holding an app under a key: `export default { app }` or `module.exports = { app }`.
  const named = Object.keys(o).find((k) => likelyApp(k, o[k]));
  if (named) return `did you mean ${path}:${named}? (its '${named}' is ${describeValue(o[named])})`;
  if (typeof o.listen === 'function') return 'it has listen(): corral listens for it: export the app or request handler it serves (for Koa, the Koa app; for Express, the app), without calling listen()';
  if (typeof o.handle === 'function' || typeof o.handler === 'function') return 'a (req, res) function: export its request handler function itself';
  return undefined;
}
