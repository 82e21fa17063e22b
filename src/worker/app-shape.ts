/**
 * What a loaded app is to the worker (LoadedApp), and the error an app that cannot be served
 * raises. Apart from app-loader.ts so that the adapters of particular frameworks (hapi) and
 * the diagnosis of what a module exports can use them without importing the loader.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppLoadCode } from '../errors.js';

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
  /** Run at the end of a drain; `budgetMs` is what is left of graceful-timeout for it. */
  close?: (budgetMs: number) => unknown;
  /**
   * The app's upgrade handler, asked once init has run (a Fastify instance's plugins add
   * theirs as it gets ready); undefined when it has none.
   */
  upgrade?: () => UpgradeHandler | undefined;
  /** What the loader noticed that may break the app under corral, for the worker's log (warn). */
  warnings?: string[];
}

/** A problem with the app itself (not corral): the worker exits 4 and the master says why. */
export class AppLoadError extends Error {
  /** The app's own stack, for the worker's log; the message stays one line. */
  readonly detail: string | undefined;

  constructor(readonly code: AppLoadCode, message: string, cause?: unknown) {
    super(message);
    this.detail = cause instanceof Error ? cause.stack : undefined;
  }
}

/** An error as one line: its name and the first line of its message. */
export function oneLine(err: unknown): string {
  const e = err as Error;
  return e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(err);
}
