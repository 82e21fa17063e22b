// node:cluster contender: a primary that forks BENCH_WORKERS workers running
// hello.mjs, with the scheduling policy BENCH_POLICY ('rr', the default on
// Linux, or 'none': every worker accepts on the shared socket).
import cluster from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const app = path.join(path.dirname(fileURLToPath(import.meta.url)), 'hello.mjs');
// Must be set before the first fork.
cluster.schedulingPolicy = process.env.BENCH_POLICY === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
cluster.setupPrimary({ exec: app });

const workers = Number(process.env.BENCH_WORKERS || 2);
for (let i = 0; i < workers; i++) cluster.fork();

// Workers that die are not replaced: a benchmark should see the failure, not
// hide it.
cluster.on('exit', (worker, code, signal) => {
  if (code !== 0) console.error(`worker ${worker.process.pid} exited (code ${code}, signal ${signal})`);
});
