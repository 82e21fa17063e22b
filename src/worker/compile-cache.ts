/**
 * Node's module compile cache (module.enableCompileCache, Node 22.1 and later): the code V8
 * compiled for each module, kept on disk by absolute path and checked against the source, so
 * a worker of the next generation skips compiling what its predecessors compiled. Several
 * workers may write the same directory at once. On a line without it (Node 20) both calls
 * do nothing: the workers start as they always did.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import * as nodeModule from 'node:module';

interface CacheApi {
  enableCompileCache?: (dir: string) => { status: number; message?: string; directory?: string };
  flushCompileCache?: () => void;
  constants?: { compileCacheStatus?: Record<string, number> };
}

const api = nodeModule as unknown as CacheApi;

/** What became of the cache: on (in `directory`), or why not, for the worker's debug log. */
export type CacheOutcome = { on: true; directory: string } | { on: false; why: string };

/**
 * Why `dir` cannot hold this process's compiled code, or undefined when it can. A directory this process may trust with compiled code: created if missing (closed to
 * others), and then a real directory owned by this user that no one else may write. A
 * directory someone else could write into (a shared temp directory) could hand the worker
 * code that is not the app's.
 */
export function cacheDirProblem(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) return `${dir} is not a directory`;
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) return `${dir} belongs to another user (uid ${st.uid})`;
    if ((st.mode & 0o022) !== 0) return `${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)})`;
    return undefined;
  } catch (err) {
    return `${dir}: ${(err as Error).message}`;
  }
}

/** Turns the cache on for every module loaded from now on; called before the app (and most of corral) loads. */
export function enableCompileCache(dir: string): CacheOutcome {
  if (typeof api.enableCompileCache !== 'function') return { on: false, why: `Node ${process.version} has no module compile cache (22.1 and later)` };
  const problem = cacheDirProblem(dir);
  if (problem) return { on: false, why: problem };
  const out = api.enableCompileCache(dir);
  const status = api.constants?.compileCacheStatus ?? {};
  if (out.status === status.ENABLED || out.status === status.ALREADY_ENABLED) return { on: true, directory: out.directory ?? dir };
  // DISABLED: NODE_DISABLE_COMPILE_CACHE is set in the environment, which wins.
  return { on: false, why: out.message ?? `status ${out.status}` };
}

/**
 * Writes what this process compiled so far (Node 22.10 and later; before, Node writes it at
 * exit only): called once the worker is ready, so workers started after it (the next
 * generation at a reload) start from it.
 */
export function flushCompileCache(): void {
  try {
    api.flushCompileCache?.();
  } catch {
    // A cache that cannot be written costs only the next worker's warmth.
  }
}
