import { isatty } from 'node:tty';
import type { Resolution } from '../config/resolve.js';
import { PRETTY_COLOR_FORMAT, PRETTY_FORMAT } from './access-pretty.js';
import { logTargets } from './destinations.js';
import { isJournalStream } from '../systemd/journal.js';

/**
 * What the workers should write for access lines: the pretty format when the lines end up
 * on a terminal (or always on stdout, in dev) and the format was left at its default;
 * otherwise the configured format unchanged.
 */
export function terminalAccessFormat(opts: {
  configured: string;
  fromDefault: boolean;
  /** The access log goes to stdout (not a file, not off). */
  toStdout: boolean;
  /** stdout is a terminal (and not journald). */
  tty: boolean;
  /** Dev: readable lines on stdout even when it is a pipe. */
  dev: boolean;
}): string {
  if (!opts.fromDefault || !opts.toStdout) return opts.configured;
  if (opts.tty) return PRETTY_COLOR_FORMAT;
  return opts.dev ? PRETTY_FORMAT : opts.configured;
}

/**
 * Access lines on a terminal read `GET /nope 404 24 B 0.9 ms` (coloured): when the access
 * log goes to stdout, stdout is a TTY (not journald), and the format was left at its
 * default, the format the workers get becomes `pretty-color`. In dev, stdout gets the
 * readable line even when it is a pipe (without colours). Files and journald keep the
 * configured format. Returns the same resolution, adjusted.
 */
export function withTerminalAccessFormat(r: Resolution, cwd: string, dev = false): Resolution {
  const toStdout = logTargets(r, cwd).access.kind === 'std';
  r.config.accessLogFormat = terminalAccessFormat({
    configured: r.config.accessLogFormat,
    fromDefault: r.sources.accessLogFormat.layer === 'default',
    toStdout,
    tty: toStdout && isatty(1) && !isJournalStream(1),
    dev,
  });
  return r;
}
