/**
 * The parsers of the arguments that commands other than serve take (`reload PID`,
 * `status PID`, `--timeout SECONDS`), one per kind, handed to commander so every command
 * checks a PID or a timeout the same way. A refused value is an E_CONFIG_VALUE naming the
 * argument, the value and the rule, like a bad setting.
 */
import { CorralError } from './errors.js';

/** Linux's PID_MAX_LIMIT (include/linux/threads.h): no PID is ever larger, whatever pid_max says. */
export const PID_MAX = 4_194_304;

/**
 * The largest timeout setTimeout can wait: beyond 2^31-1 ms Node fires at once instead
 * (with a TimeoutOverflowWarning), which would turn a very long --timeout into none.
 */
export const TIMEOUT_MAX_S = Math.floor(0x7fffffff / 1000);

function refuse(what: string, text: string, rule: string): CorralError {
  return new CorralError('E_CONFIG_VALUE', `${what} (from command line): ${JSON.stringify(text)} is not valid: ${rule}`);
}

/**
 * A process ID, exactly as written: decimal digits naming 1 to PID_MAX. PID 1 is a master
 * in a container; 0 would mean "my process group" to kill(2); and a number too large to be
 * a PID is refused rather than rounded to a different one (Number("9007199254740993") is
 * 9007199254740992).
 */
export function parsePid(text: string): number {
  const digits = /^\d+$/.test(text) ? text.replace(/^0+(?=\d)/, '') : '';
  if (digits === '' || digits.length > String(PID_MAX).length || Number(digits) < 1 || Number(digits) > PID_MAX) {
    throw refuse('PID', text, `must be a whole number from 1 to ${PID_MAX} (Linux's largest PID)`);
  }
  return Number(digits);
}

/** `--timeout SECONDS` as milliseconds: a decimal number of seconds, > 0 and at most TIMEOUT_MAX_S. */
export function parseTimeout(text: string): number {
  const s = /^(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : NaN;
  if (!(s > 0 && s <= TIMEOUT_MAX_S)) throw refuse('--timeout', text, `must be a number of seconds > 0 and at most ${TIMEOUT_MAX_S}`);
  return Math.max(1, Math.round(s * 1000));
}
