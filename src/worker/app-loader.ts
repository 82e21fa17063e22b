import type { EventEmitter } from 'node:events';
import { Server as NetServer } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppLoadError, oneLine, type Handler, type InitContext, type LoadedApp, type UpgradeHandler } from './app-shape.js';
import { describeValue, likelyApp, looksServable, nearestShape, SHAPES } from './app-diagnosis.js';
import { fetchHandler, type FetchFn } from './fetch-adapter.js';
import { hapiApp, hapiStarted, isHapiServer } from './hapi-adapter.js';
import { ListenWatch } from './listen-watch.js';

/** Splits "path/app.mjs:exportName"; a trailing ":name" is an export only if it is an identifier. */
export function parseAppRef(ref: string): { path: string; exportName: string | undefined } {
  const m = /^(.*):([A-Za-z_$][\w$]*)$/.exec(ref);
  return m ? { path: m[1]!, exportName: m[2]! } : { path: ref, exportName: undefined };
}

/** How long a module that exports no app is given to make a server listen (hapi's start() is async). */
const LISTEN_SETTLE_MS = 100;

const ADVICE_LISTEN = 'corral owns the sockets and listens for the app: export the app instead of making it listen (Express: `export default app` without app.listen(); hapi: `export default server` without server.start())';

interface Loading {
  file: string;
  /** The path as given, for suggestions of APP:EXPORT. */
  path: string;
  watch: ListenWatch;
}

export async function loadApp(ref: string, cwd: string): Promise<LoadedApp> {
  const { path, exportName } = parseAppRef(ref);
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  // Servers the module makes listen while it loads, and until its app is classified.
  const watch = new ListenWatch();
  try {
    return await load({ file, path, watch }, exportName);
  } finally {
    watch.stop();
  }
}

async function load(at: Loading, exportName: string | undefined): Promise<LoadedApp> {
  const { file } = at;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(file)) throw new AppLoadError('E_APP_LOAD', `app module ${file} does not exist`);
    throw new AppLoadError('E_APP_LOAD', `app module ${file} failed to load: ${oneLine(e)}`, e);
  }
  const name = exportName ?? 'default';
  let target = mod[name];
  const cjs = mod.default as Record<string, unknown> | undefined;
  if (target === undefined && exportName && cjs && typeof cjs === 'object') target = cjs[exportName];
  let hooks = hooksOf(mod);
  let where = exportName ? `app module ${file}: export '${name}'` : `app module ${file}: default export`;
  // In CommonJS the "default export" is module.exports itself, which then holds init.
  const onlyExports = target === undefined || (!looksServable(target) && (target as { init?: unknown } | null)?.init === mod.init);
  if (onlyExports && !exportName && isBuilder(mod.init)) {
    // hapi's testing docs' shape: no default export, an `init()` that builds (and initializes)
    // the server and returns it. That init is the app's maker, not a hook.
    where = `app module ${file}: the value its init() returned`;
    target = await made(mod.init, `app module ${file}: init()`);
    hooks = { ...hooks, init: undefined };
    if (target === undefined) throw await missingExport(at, mod, name, 'and its init() returned nothing');
  }
  if (target === undefined) throw await missingExport(at, mod, name);
  // A transpiled module's `exports.default` arrives as default.default.
  if (name === 'default' && target && typeof target === 'object' && 'default' in target && !looksServable(target)) {
    target = (target as Record<string, unknown>).default;
  }
  const app = await classify(target, where, at, true);
  const upgrade = hooks.upgrade;
  // The app's own readiness first (a Fastify instance's ready()): the module's init then sees
  // a complete app, and what ready() adds (plugins' decorations, their 'upgrade' listeners) is there.
  const init = chainInit(app.init, hooks.init);
  return { ...app, init, close: chainClose(hooks.close, app.close), upgrade: upgrade ? () => upgrade : app.upgrade, warnings: sideListens(at) };
}

/**
 * Servers the module made listen on a fixed port or path while it loaded, not known to be the
 * app's (a Koa app's listen() serves a fresh callback): every worker asks for the same address.
 */
function sideListens(at: Loading): string[] {
  return at.watch.seen.filter((s) => s.fixed).map((s) => `app module ${at.file} made a server listen ${s.where} itself while it loaded: every worker does the same, and only one can bind it; if that server is the app (app.listen()), remove the call: corral listens for the app`);
}

/** An export that builds the app when called without arguments (not a hook taking `{ servers, signal }`). */
function isBuilder(v: unknown): v is () => unknown {
  return typeof v === 'function' && v.length === 0;
}

async function made(fn: () => unknown, where: string): Promise<unknown> {
  try {
    return await fn();
  } catch (err) {
    throw new AppLoadError('E_APP_LOAD', `${where} threw: ${oneLine(err)}`, err);
  }
}

/** The export is missing: what the module does export, which of it could be served, and any server it made listen. */
async function missingExport(at: Loading, mod: Record<string, unknown>, name: string, more = ''): Promise<AppLoadError> {
  // Node 23 and later add 'module.exports' to the namespace of a CommonJS module imported from ESM.
  const names = Object.keys(mod).filter((k) => k !== '__esModule' && k !== 'module.exports' && mod[k] !== undefined);
  const what = `app module ${at.file} has no ${name === 'default' ? 'default export' : `export '${name}'`}${more ? ` ${more}` : ''} (it exports: ${names.join(', ') || 'nothing'})`;
  const servable = names.filter((k) => likelyApp(k, mod[k]));
  const hint = servable.length > 0 ? `; did you mean ${servable.map((k) => `${at.path}:${k}`).join(' or ')}? (${servable.map((k) => `${k} is ${describeValue(mod[k])}`).join('; ')})` : '';
  if (!hint) {
    // hapi's start() calls listen() only once its async initialization is done, after the import.
    await new Promise((r) => setTimeout(r, LISTEN_SETTLE_MS));
    const seen = at.watch.seen[0];
    if (seen) return new AppLoadError('E_APP_LISTENING', `${what}, and it made a server listen ${seen.where} itself while it loaded: ${ADVICE_LISTEN}`);
  }
  return new AppLoadError('E_APP_EXPORT', `${what}${hint || `; corral serves ${SHAPES}`}`);
}

function hooksOf(mod: Record<string, unknown>): { init?: ((ctx: InitContext) => unknown) | undefined; close?: () => unknown; upgrade?: UpgradeHandler } {
  // Named exports only: an app object's own methods (Express has app.init) are not hooks.
  const { init, close, upgrade } = mod;
  return {
    init: typeof init === 'function' ? (init as (ctx: InitContext) => unknown) : undefined,
    close: typeof close === 'function' ? (close as () => unknown) : undefined,
    upgrade: typeof upgrade === 'function' ? (upgrade as UpgradeHandler) : undefined,
  };
}

function chainInit(a?: (ctx: InitContext) => unknown, b?: (ctx: InitContext) => unknown): ((ctx: InitContext) => unknown) | undefined {
  if (!a || !b) return a ?? b;
  return async (ctx) => {
    await a(ctx);
    await b(ctx);
  };
}

/** The module's close hook, then the app's own (which is given what is left of graceful-timeout). */
function chainClose(hook?: () => unknown, own?: (budgetMs: number) => unknown): LoadedApp['close'] {
  if (!hook) return own;
  return async (budgetMs) => {
    const start = performance.now();
    await hook();
    if (own) await own(Math.max(0, budgetMs - (performance.now() - start)));
  };
}

/** The app listens by itself: an exported server that listens, or the app's own server seen listening during the load. */
function listensItself(v: unknown, where: string, at: Loading): AppLoadError | undefined {
  const say = (how: string) => new AppLoadError('E_APP_LISTENING', `${where} ${how}: ${ADVICE_LISTEN}`);
  if (v instanceof NetServer && (v.listening || at.watch.find((s) => s === v))) return say('is a server that listens by itself');
  if (isHapiServer(v) && hapiStarted(v)) return say('is a hapi server the app started itself (server.start())');
  // Express's app.listen() makes a server with the app as its request listener; Fastify's
  // listen() listens on fastify.server.
  const own = (s: NetServer) => (typeof v === 'function' && s.listeners('request').includes(v as never))
    || (typeof v === 'object' && v !== null && ((v as { server?: unknown }).server === s || (v as { listener?: unknown }).listener === s));
  const seen = at.watch.find(own);
  return seen ? say(`is an app the module made listen ${seen.where} itself while it loaded`) : undefined;
}

async function classify(v: unknown, where: string, at: Loading, allowFactory: boolean): Promise<LoadedApp> {
  const listening = listensItself(v, where, at);
  if (listening) throw listening;
  if (isHapiServer(v)) return hapiApp(v, where);
  if (v !== null && (typeof v === 'object' || typeof v === 'function')) {
    const o = v as Record<string, unknown>;
    if (typeof o.routing === 'function' && typeof o.ready === 'function') return fastifyApp(o);
    if (typeof o.callback === 'function' && typeof o.use === 'function' && typeof v === 'object') {
      return { kind: 'koa', handler: (o.callback as () => Handler).call(o) };
    }
    if (typeof o.fetch === 'function' && typeof v === 'object') {
      return { kind: 'fetch', handler: fetchHandler((o.fetch as FetchFn).bind(o)) };
    }
  }
  if (typeof v === 'function') {
    const fn = v as (...args: unknown[]) => unknown;
    if (fn.length >= 2) return { kind: 'handler', handler: fn as Handler };
    if (fn.length === 1) return { kind: 'fetch', handler: fetchHandler(fn as FetchFn) };
    if (allowFactory) {
      const result = await made(fn, `app factory ${where}`);
      return classify(result, `${where} is a factory whose result`, at, false);
    }
  }
  const near = nearestShape(v, at.path);
  throw new AppLoadError('E_APP_SHAPE', `${where} is ${describeValue(v)}; corral serves ${SHAPES}${near ? `; ${near}` : ''}`);
}

function fastifyApp(o: Record<string, unknown>): LoadedApp {
  // Fastify: serve through its router once its plugins are loaded.
  const fastify = o as { routing: Handler; ready: () => Promise<unknown>; close: () => Promise<unknown>; server?: EventEmitter };
  return {
    kind: 'fastify', handler: (req, res) => fastify.routing(req, res), init: () => fastify.ready(), close: () => fastify.close(),
    // Plugins (@fastify/websocket) listen for upgrades on Fastify's own server, which never
    // listens: corral's servers hand theirs on to it, as Fastify does from its secondary servers.
    upgrade: () => {
      const own = fastify.server;
      if (!own || own.listenerCount('upgrade') === 0) return undefined;
      return (req, socket, head) => own.emit('upgrade', req, socket, head);
    },
  };
}
