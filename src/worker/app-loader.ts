import type { EventEmitter } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isAbsolute, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { fetchHandler, type FetchFn } from './fetch-adapter.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** An app's `upgrade` export: a request with an Upgrade header, its socket and the bytes read past its head. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

/** What an app's `init` export receives (docs/long-lived.md). */
export interface InitContext {
  /**
   * The worker's HTTP servers, one per listener, created and configured but not listening
   * yet: what the app attaches to them here (Socket.IO, its own 'upgrade' listeners) works
   * from their first connection.
   */
  servers: Server[];
  /**
   * Aborted the moment this worker starts draining; its `reason` is why, a DrainReason:
   * 'reload', 'shutdown', 'recycle' or 'scale-down'.
   */
  signal: AbortSignal;
}

export interface LoadedApp {
  handler: Handler;
  /** What the app is, for the logs ("express-style handler", "koa", ...). */
  kind: string;
  init?: (ctx: InitContext) => unknown;
  close?: () => unknown;
  /**
   * The app's upgrade handler, asked once init has run (a Fastify instance's plugins add
   * theirs as it gets ready); undefined when it has none.
   */
  upgrade?: () => UpgradeHandler | undefined;
}

/** A problem with the app itself (not corral): the worker exits 4 and the master says why. */
export class AppLoadError extends Error {
  /** The app's own stack, for the worker's log; the message stays one line. */
  readonly detail: string | undefined;

  constructor(message: string, cause?: unknown) {
    super(message);
    this.detail = cause instanceof Error ? cause.stack : undefined;
  }
}

function oneLine(err: unknown): string {
  const e = err as Error;
  return e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(err);
}

/** Splits "path/app.mjs:exportName"; a trailing ":name" is an export only if it is an identifier. */
export function parseAppRef(ref: string): { path: string; exportName: string | undefined } {
  const m = /^(.*):([A-Za-z_$][\w$]*)$/.exec(ref);
  return m ? { path: m[1]!, exportName: m[2]! } : { path: ref, exportName: undefined };
}

const SHAPES = 'a (req, res) handler, an Express/Connect/Koa/Fastify app, an object with fetch(request), or a factory function (no parameters) returning one';

export async function loadApp(ref: string, cwd: string): Promise<LoadedApp> {
  const { path, exportName } = parseAppRef(ref);
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(file)) throw new AppLoadError(`app module ${file} does not exist`);
    throw new AppLoadError(`app module ${file} failed to load: ${oneLine(e)}`, e);
  }
  const name = exportName ?? 'default';
  let target = mod[name];
  const cjs = mod.default as Record<string, unknown> | undefined;
  if (target === undefined && exportName && cjs && typeof cjs === 'object') target = cjs[exportName];
  if (target === undefined) {
    const names = Object.keys(mod).filter((k) => k !== '__esModule');
    throw new AppLoadError(`app module ${file} has no export '${name}' (it exports: ${names.join(', ') || 'nothing'})`);
  }
  // A transpiled module's `exports.default` arrives as default.default.
  if (name === 'default' && target && typeof target === 'object' && 'default' in target && !isApp(target)) {
    target = (target as Record<string, unknown>).default;
  }
  const hooks = hooksOf(mod);
  const app = await classify(target, `${file} export '${name}'`, true);
  const upgrade = hooks.upgrade;
  // The app's own readiness first (a Fastify instance's ready()): the module's init then sees
  // a complete app, and what ready() adds (plugins' decorations, their 'upgrade' listeners) is there.
  const init = chainInit(app.init, hooks.init);
  return { ...app, init, close: chain(hooks.close, app.close), upgrade: upgrade ? () => upgrade : app.upgrade };
}

function isApp(v: unknown): boolean {
  return typeof v === 'function' || (typeof v === 'object' && v !== null && ('fetch' in v || 'callback' in v || 'routing' in v));
}

function hooksOf(mod: Record<string, unknown>): { init?: (ctx: InitContext) => unknown; close?: () => unknown; upgrade?: UpgradeHandler } {
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

function chain(a?: () => unknown, b?: () => unknown): (() => Promise<void>) | undefined {
  if (!a && !b) return undefined;
  return async () => {
    if (a) await a();
    if (b) await b();
  };
}

async function classify(v: unknown, where: string, allowFactory: boolean): Promise<LoadedApp> {
  if (v !== null && (typeof v === 'object' || typeof v === 'function')) {
    const o = v as Record<string, unknown>;
    if (typeof o.routing === 'function' && typeof o.ready === 'function') {
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
      let made: unknown;
      try {
        made = await fn();
      } catch (err) {
        throw new AppLoadError(`app factory ${where} threw: ${oneLine(err)}`, err);
      }
      return classify(made, `the value returned by ${where}`, false);
    }
  }
  throw new AppLoadError(`${where} is ${describe(v)}; expected ${SHAPES}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'function') return `a function with ${v.length} parameters`;
  if (typeof v === 'object') return 'an object without fetch(), callback() or routing()';
  return `a ${typeof v}`;
}
