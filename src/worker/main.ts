/**
 * The worker process's entry: the master passes the spec in CORRAL_WORKER (removed at once,
 * so the app never sees it) and the Worker in worker.ts does the rest. The compile cache is
 * turned on first, and the rest of the worker imported after, so corral's own modules come
 * from the cache too, not only the app's.
 */
import type { WorkerSpec } from '../ipc/messages.js';
import { enableCompileCache } from './compile-cache.js';

function specFromEnv(): WorkerSpec | undefined {
  const raw = process.env.CORRAL_WORKER;
  delete process.env.CORRAL_WORKER;
  try {
    return raw ? (JSON.parse(raw) as WorkerSpec) : undefined;
  } catch {
    return undefined;
  }
}

const spec = specFromEnv();
if (!spec) {
  process.stderr.write('corral: this module is started by the corral master, not directly\n');
  process.exit(1);
}
const cache = spec.compileCache === undefined ? undefined : enableCompileCache(spec.compileCache);
const { runWorker } = await import('./worker.js');
runWorker(spec, cache);
