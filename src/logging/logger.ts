import { createRequire } from 'node:module';
import type pinoFn from 'pino';
import type { Logger } from 'pino';

export type { Logger };

const require = createRequire(import.meta.url);

export interface LoggerOptions {
  level: string;
  /** Fields on every line (pid, role, worker). */
  base: Record<string, unknown>;
}

/** Where a logger writes: anything with write(line). */
export interface LineDestination {
  write(line: string): unknown;
}

/**
 * The error log as pino JSON lines. The master passes its ErrorLog (the one writer);
 * a worker passes its channel to the master, written synchronously so nothing is lost at exit.
 * pino is required here, not imported at the top, so that a process which only may log
 * (a worker, see lazy-logger.ts) does not pay for loading it before it serves.
 */
export function createLogger(opts: LoggerOptions, dest: LineDestination | number = 2): Logger {
  const pino = require('pino') as typeof pinoFn;
  return pino(
    {
      level: opts.level,
      base: opts.base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest,
  );
}
