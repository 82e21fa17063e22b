/**
 * What the kernel lets a new process be started with (execve(2), "Limits on size of
 * arguments and environment"): each argument or environment string at most MAX_ARG_STRLEN
 * (32 pages) with its NUL; all of them, with a pointer each, at most a quarter of the stack
 * limit (RLIMIT_STACK), never more than 3/4 of _STK_LIM (8 MiB) and never less than 32 pages.
 * Past either, execve fails with E2BIG. A string cannot hold a NUL byte at all: it would end
 * there (Node refuses it before trying).
 */
import { readFileSync } from 'node:fs';

/** 32 pages of 4 KiB: the smallest page size Linux runs with, so the bound holds everywhere. */
export const MAX_ARG_STRLEN = 32 * 4096;
/** The floor on the total since Linux 2.6.25, whatever the stack limit. */
const ARG_MAX_FLOOR = 32 * 4096;
/** 3/4 of _STK_LIM, the ceiling on the total since Linux 4.13. */
const ARG_MAX_CEILING = (8 * 1024 * 1024 * 3) / 4;
const POINTER_BYTES = 8;

/** The soft stack limit in /proc/self/limits' text ("Max stack size  8388608  unlimited  bytes"); undefined when not there. */
function stackLimit(limits: string): number | undefined {
  const m = /^Max stack size\s+(\S+)/m.exec(limits);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

function readLimits(): string {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return '';
  }
}

/**
 * The most bytes of arguments and environment a new process may get, as `getconf ARG_MAX`
 * reports it, from the text of /proc/self/limits. Children inherit the master's stack
 * limit, so the master's is theirs. Without it the floor is the bound: small, but never
 * one the kernel would refuse.
 */
export function argMax(limits = readLimits()): number {
  const stack = stackLimit(limits);
  if (stack === undefined || Number.isNaN(stack)) return ARG_MAX_FLOOR;
  return Math.max(ARG_MAX_FLOOR, Math.min(ARG_MAX_CEILING, Math.floor(stack / 4)));
}

/** The bytes execve copies for one string: its UTF-8 bytes and the NUL that ends it. */
export function stringBytes(s: string): number {
  return Buffer.byteLength(s) + 1;
}

/** What execve counts against ARG_MAX: the file name, every argument and `NAME=value`, each with its NUL and a pointer. */
export function execBytes(file: string, argv: string[], env: Record<string, string | undefined>): number {
  let n = stringBytes(file);
  for (const a of argv) n += stringBytes(a) + POINTER_BYTES;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) n += stringBytes(`${k}=${v}`) + POINTER_BYTES;
  return n;
}

/** "5.0 MiB", "130 KiB", "900 B". */
export function sizeText(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${bytes} B`;
}
