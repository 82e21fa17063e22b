/**
 * The `workers` setting: a fixed number of workers (`4`), or a range the master scales
 * within as the load asks (`2..8`; in a config file also `{ min: 2, max: 8 }`). A fixed
 * number is the range with min = max, so everything downstream reads one shape.
 */
import { RuleError, type ValueType } from './validators.js';

export interface WorkerRange {
  /** Workers kept however quiet it is; also how many start. */
  min: number;
  /** Workers never exceeded, however busy it is. */
  max: number;
}

/** The most workers one master runs. */
const MOST = 1024;
const RULE = `must be a whole number from 1 to ${MOST}, or a range MIN..MAX such as 2..8`;

function describe(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw) : typeof raw === 'object' && raw !== null ? JSON.stringify(raw) : String(raw);
}

/** One bound: a whole number from 1 to MOST, from a number or its decimal spelling. */
function bound(raw: unknown, whole: unknown, what: string): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n)) throw new RuleError(`${describe(whole)} is not valid: ${RULE}`);
  if (n < 1 || n > MOST) throw new RuleError(`${describe(whole)} is not valid: ${what} must be from 1 to ${MOST}`);
  return n;
}

function ordered(min: number, max: number, whole: unknown): WorkerRange {
  if (min > max) throw new RuleError(`${describe(whole)} is not valid: the minimum (${min}) is above the maximum (${max}); write MIN..MAX`);
  return { min, max };
}

function fromObject(raw: object): WorkerRange {
  const keys = Object.keys(raw);
  const extra = keys.filter((k) => k !== 'min' && k !== 'max');
  if (extra.length > 0 || !('min' in raw) || !('max' in raw)) {
    throw new RuleError(`${describe(raw)} is not valid: a range object has exactly two fields, min and max ({ min: 2, max: 8 })`);
  }
  const r = raw as { min: unknown; max: unknown };
  return ordered(bound(r.min, raw, 'min'), bound(r.max, raw, 'max'), raw);
}

export function workerRange(): ValueType<WorkerRange> {
  return {
    kind: 'count or range',
    arg: 'N|MIN..MAX',
    parse(raw) {
      if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) return fromObject(raw);
      if (typeof raw === 'string' && raw.includes('..')) {
        const m = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(raw);
        if (!m) throw new RuleError(`${describe(raw)} is not valid: ${RULE}`);
        return ordered(bound(m[1], raw, 'the minimum'), bound(m[2], raw, 'the maximum'), raw);
      }
      const n = bound(raw, raw, 'the number of workers');
      return { min: n, max: n };
    },
    show: showRange,
  };
}

/** `4` for a fixed count, `2..8` for a range. */
export function showRange(r: WorkerRange): string {
  return r.min === r.max ? String(r.min) : `${r.min}..${r.max}`;
}

/** The same number of workers, always. */
export function fixed(n: number): WorkerRange {
  return { min: n, max: n };
}
