import { createLogger, type LineDestination, type Logger, type LoggerOptions } from './logger.js';

import { LEVEL_NAMES, levelValue } from './levels.js';

/**
 * A logger that creates the pino logger (and loads pino, about 20 ms of start-up on a small
 * machine) only when a line at an enabled level is first written, or when anything beyond
 * the level methods and `level` is used. A worker logs nothing while it serves normally, so
 * it listens sooner and usually never loads pino at all. The lines are the same as
 * createLogger's: each is stamped when it is written, and pino is required synchronously,
 * so a line written just before process.exit() is not lost.
 */
export function lazyLogger(opts: LoggerOptions, dest: LineDestination | number): Logger {
  let real: Logger | undefined;
  let level = opts.level;
  const load = (): Logger => (real ??= createLogger({ ...opts, level }, dest));
  const methods: Record<string, (...args: unknown[]) => void> = {};
  for (const name of LEVEL_NAMES) {
    methods[name] = (...args: unknown[]) => {
      if (!real && levelValue(name) < levelValue(level)) return;
      (load()[name] as (...a: unknown[]) => void)(...args);
    };
  }
  return new Proxy(methods, {
    get(target, key) {
      if (typeof key === 'string' && Object.hasOwn(target, key)) return target[key];
      if (key === 'level') return real ? real.level : level;
      const r = load();
      const value: unknown = Reflect.get(r, key, r);
      return typeof value === 'function' ? value.bind(r) : value;
    },
    set(_target, key, value) {
      if (key === 'level' && !real) {
        level = String(value);
        return true;
      }
      return Reflect.set(load(), key, value);
    },
  }) as unknown as Logger;
}
