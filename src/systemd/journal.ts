import { fstatSync } from 'node:fs';

/**
 * True when fd is connected to journald: JOURNAL_STREAM holds "device:inode" of the stream
 * systemd connected to stdout/stderr (systemd.exec(5)); a redirected descriptor no longer
 * matches.
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
