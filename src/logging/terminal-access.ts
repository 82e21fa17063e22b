import { isatty } from 'node:tty';
import type { Resolution } from '../config/resolve.js';
import { terminalAccessFormat } from './access-pretty.js';
import { logTargets } from './destinations.js';
import { isJournalStream } from '../systemd/journal.js';

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
