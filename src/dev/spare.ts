/**
 * A warm spare worker (dev). Started like a worker, with the same descriptors, but before
 * there is anything to serve: Node is booted and corral's worker modules are loaded, then
 * it waits. When a reload needs a worker, the master sends the real spec and environment,
 * and the spare becomes that worker by importing the worker's entry: only the app's import
 * and listen are left to pay. A spare whose master is gone exits.
 */
import type { WorkerSpec } from '../ipc/messages.js';

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
  process.env.CORRAL_WORKER = JSON.stringify(msg.spec);
  void import('../worker/main.js').finally(() => {
    process.off('message', onMessage);
    for (const m of early.splice(0)) process.emit('message', m, undefined);
  });
}

function onMessage(msg: SpareMessage): void {
  if (activated) early.push(msg);
  else if (msg && msg.t === 'activate') activate(msg);
}
process.on('message', onMessage);

// What the worker's entry imports, loaded now so that activation finds it in the module
// cache. A module missing from this list is merely loaded later.
await Promise.all([
  import('node:http'),
  import('node:net'),
  import('../worker/app-loader.js'),
  import('../worker/connections.js'),
  import('../worker/request-handler.js'),
  import('../worker/access-log.js'),
  import('../worker/access-writer.js'),
  import('../worker/request-log.js'),
  import('../worker/client-errors.js'),
  import('../worker/conn-info.js'),
  import('../worker/response.js'),
  import('../logging/lazy-logger.js'),
  import('../logging/access-format.js'),
]).catch(() => {});
// node:http's server internals (the parser, the response class) load on first use.
(await import('node:http')).createServer().close();
process.send?.({ t: 'spare-ready' });
