import { reload } from '../control/reload-client.js';
import { CorralError } from '../errors.js';

/** `corral reload [--wait] PID`. */
export async function reloadCommand(pidText: string, opts: { wait?: boolean; timeout: string }): Promise<void> {
  // PID 1 is a master in a container; 0 would mean "my process group" to kill(2).
  if (!/^\d+$/.test(pidText) || !Number.isSafeInteger(Number(pidText)) || Number(pidText) < 1) throw new CorralError('E_RELOAD_TARGET', `${JSON.stringify(pidText)} is not a process ID`);
  const timeout = Number(opts.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new CorralError('E_CONFIG_VALUE', `--timeout (from command line): ${JSON.stringify(opts.timeout)} is not valid: must be a number of seconds > 0`);
  const result = await reload(Number(pidText), { wait: opts.wait === true, timeoutMs: timeout * 1000 });
  if (result) process.stdout.write(`reload #${result.seq} done: ${result.detail}\n`);
}
