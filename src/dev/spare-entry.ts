/**
 * A warm spare worker (dev). Started like a worker, with the same descriptors, but before
 * there is anything to serve: Node is booted and corral's worker modules are loaded, then
 * it waits. When a reload needs a worker, the master sends the real spec and environment,
 * and the spare becomes that worker by starting it from the preloaded code: only the app's import
 * and listen are left to pay. A spare whose master is gone exits.
 */
import type { WorkerSpec } from '../ipc/messages.js';
import { enableCompileCache } from '../worker/compile-cache.js';

export type SpareMessage = { t: 'activate'; spec: WorkerSpec; set: Record<string, string>; unset: string[] };

// Spawned through spawnWorker, which hands it a placeholder spec: not ours to keep.
delete process.env.CORRAL_WORKER;

// Like a worker: Ctrl-C reaches the whole process group, and only the master decides.
const ignore = () => {};
for (const sig of ['SIGINT', 'SIGHUP', 'SIGUSR1'] as const) process.on(sig, ignore);
const gone = () => process.exit(0);
process.on('disconnect', gone);
process.on('SIGTERM', gone);
process.on('SIGQUIT', gone);

let activated = false;
/** Messages that arrive while the worker's entry loads, handed to it once it listens. */
const early: unknown[] = [];

function activate(msg: SpareMessage): void {
  activated = true;
  process.off('disconnect', gone);
  process.off('SIGTERM', gone);
  process.off('SIGQUIT', gone);
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGUSR1'] as const) process.off(sig, ignore);
  for (const k of msg.unset) delete process.env[k];
  Object.assign(process.env, msg.set);
  void worker.then(({ runWorker }) => {
    process.off('message', onMessage);
    // Before the app is imported: the app's modules come from the cache (corral's were loaded before).
    const cache = msg.spec.compileCache === undefined ? undefined : enableCompileCache(msg.spec.compileCache);
    runWorker(msg.spec, cache);
    for (const m of early.splice(0)) process.emit('message', m, undefined);
  });
}

function onMessage(msg: SpareMessage): void {
  if (activated) early.push(msg);
  else if (msg && msg.t === 'activate') activate(msg);
}
process.on('message', onMessage);

// The worker's code, loaded now (without starting a worker) so that activation only has to
// import the app and listen.
const worker = import('../worker/worker.js');
await worker;
// node:http's server internals (the parser, the response class) load on first use.
(await import('node:http')).createServer().close();
process.send?.({ t: 'spare-ready' });
