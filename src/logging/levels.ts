/**
 * The error log's levels, declared once: pino's numeric value (a line is written when its
 * level is at least the logger's), the syslog priority of its `<N>` prefix for journald
 * (sd-daemon(3)), and its colour on a terminal.
 */
const LEVELS = {
  trace: { value: 10, syslog: 7, color: '90' },
  debug: { value: 20, syslog: 7, color: '90' },
  info: { value: 30, syslog: 6, color: '32' },
  warn: { value: 40, syslog: 4, color: '33' },
  error: { value: 50, syslog: 3, color: '31' },
  fatal: { value: 60, syslog: 2, color: '35' },
} as const;

type LevelName = keyof typeof LEVELS;

/** The logger's methods, lowest level first. */
export const LEVEL_NAMES = Object.keys(LEVELS) as LevelName[];

/** What `log-level` accepts: every level, or `silent` for nothing at all. */
export const LOG_LEVEL_CHOICES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const satisfies ReadonlyArray<LevelName | 'silent'>;

export function levelValue(name: string): number {
  if (name === 'silent') return Infinity;
  return (LEVELS as Record<string, { value: number }>)[name]?.value ?? 0;
}

/** The `<N>` priority for a level name, `info`'s for anything unknown. */
export function syslogPriority(name: string): number {
  return (LEVELS as Record<string, { syslog: number }>)[name]?.syslog ?? LEVELS.info.syslog;
}

export function levelColor(name: string): string {
  return (LEVELS as Record<string, { color: string }>)[name]?.color ?? '0';
}
