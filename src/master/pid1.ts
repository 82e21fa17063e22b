/**
 * corral's master as PID 1, which is what a container started without an init gives it
 * (`docker run IMAGE` without `--init`, a Kubernetes pod without a shared process namespace).
 *
 * Signals work as anywhere else: the kernel drops signals that PID 1 has no handler for,
 * and the master handles every signal it documents (TERM, QUIT, INT, HUP, USR1, TTIN, TTOU).
 *
 * Reaping does not: a process whose parent exits (the `sleep` of the app's
 * `sh -c 'sleep 1 &'`) is re-parented to PID 1, which must wait(2) for it. Node waits only
 * for the children it spawned itself (libuv calls waitpid() on their PIDs, never on -1),
 * and no API of Node's can reap an adopted process, so each such orphan would stay a
 * zombie until the container stops. An init in front of corral (tini, `docker run --init`)
 * reaps them and passes the signals on; the master says so at start.
 */

/** The start-up warning when this process is PID 1, else undefined. */
function pid1Warning(pid: number = process.pid): string | undefined {
  if (pid !== 1) return undefined;
  return 'corral is PID 1 (no init in this container): processes orphaned by the app\'s children will stay zombies, as Node cannot reap them; run it under an init: `docker run --init`, or ENTRYPOINT ["tini", "--"] (see docs/deployment.md#containers)';
}

/** Logs the PID 1 warning, if any, as a warning of the master's error log. */
export function warnIfPid1(log: { warn(msg: string): void }, pid: number = process.pid): void {
  const warning = pid1Warning(pid);
  if (warning) log.warn(warning);
}
