import { fstatSync } from 'node:fs';

/** pino level → syslog priority, for `<N>` line prefixes journald understands (sd-daemon(3)). */
export const SYSLOG_PRIORITY: Record<string, number> = { trace: 7, debug: 7, info: 6, warn: 4, error: 3, fatal: 2 };

/**
 * True when fd is connected to journald: JOURNAL_STREAM holds "device:inode" of the stream
 * systemd connected to stdout/stderr; a redirected descriptor no longer matches.
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const [dev, ino] = js.split(':');
  try {
    const st = fstatSync(fd);
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}
