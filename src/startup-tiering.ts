import { setFlagsFromString } from 'node:v8';

/**
 * Start-up runs the module loader's path helpers (path.resolve, fileURLToPath) often enough
 * for V8 to optimize them with TurboFan. That is of no use once the modules are loaded, yet
 * it pages in about 4 MiB of the optimizing compiler's own code, which then stays resident
 * for the life of the master (idle master RSS 55.5 -> 51.5 MiB without it), and its
 * compile jobs take CPU from the workers booting at the same moment. So the optimizer is
 * off while the process starts; the master turns it back on once its first workers serve,
 * and what it does often from then on (relaying log lines) is optimized as before.
 *
 * Imported first by the CLI so that the flag is set before any other module loads.
 */
setFlagsFromString('--no-turbofan');

export function enableOptimizer(): void {
  setFlagsFromString('--turbofan');
}
