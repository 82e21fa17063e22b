/**
 * Value types for settings. Each parser takes a value as it arrives from a layer (a string
 * from the environment or the command line, any JSON-ish value from a config file) and
 * returns the typed value, or throws a RuleError whose message states the rule.
 */
export class RuleError extends Error {}

export interface ValueType<T> {
  /** Short name shown in docs ("integer", "seconds", ...). */
  readonly kind: string;
  /** Placeholder for the CLI flag ("N", "SECONDS", ...). */
  readonly arg: string;
  parse(raw: unknown): T;
  /** How print-config and the docs show a value. */
  show(value: T): string;
}

function describe(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw) : String(raw);
}

function toNumber(raw: unknown, rule: string): number {
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'string' && raw.trim() !== '' && /^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw.trim())) {
    return Number(raw.trim());
  }
  throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
}

export function integer(min: number, max = Number.MAX_SAFE_INTEGER): ValueType<number> {
  const rule = max === Number.MAX_SAFE_INTEGER ? `must be a whole number ≥ ${min}` : `must be a whole number from ${min} to ${max}`;
  return {
    kind: 'integer',
    arg: 'N',
    parse(raw) {
      const n = toNumber(raw, rule);
      if (!Number.isInteger(n) || n < min || n > max) throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
      return n;
    },
    show: (v) => String(v),
  };
}

/** A duration in seconds (fractions allowed). */
export function seconds(min: number, opts: { zeroDisables?: boolean; max?: number } = {}): ValueType<number> {
  const max = opts.max ?? 86_400 * 365;
  const rule = opts.zeroDisables
    ? `must be a number of seconds ≥ ${min} (0 disables)`
    : `must be a number of seconds from ${min} to ${max}`;
  return {
    kind: 'seconds',
    arg: 'SECONDS',
    parse(raw) {
      const n = toNumber(raw, rule);
      if (opts.zeroDisables && n === 0) return 0;
      if (!Number.isFinite(n) || n < min || n > max) throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
      return n;
    },
    show: (v) => (v === 0 && opts.zeroDisables ? '0 (off)' : `${v}`),
  };
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** A size in bytes, with optional K/M/G suffix (powers of 1024). */
export function bytes(opts: { zeroDisables?: boolean; min?: number; max?: number } = {}): ValueType<number> {
  const min = opts.min ?? 0;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  const bounds = [min > 0 ? `at least ${min}` : '', opts.max !== undefined ? `at most ${formatSize(opts.max)}` : ''].filter(Boolean).join(' and ');
  const rule = `must be a size like 512M, 1G or a number of bytes${opts.zeroDisables ? ' (0 disables)' : ''}${bounds ? `, ${bounds}` : ''}`;
  return {
    kind: 'size',
    arg: 'SIZE',
    parse(raw) {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string') {
        const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
        const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
        if (!m || unit === undefined) throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
        n = Math.round(Number(m[1]) * unit);
      } else throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
      if (opts.zeroDisables && n === 0) return 0;
      if (!Number.isFinite(n) || n < Math.max(min, 1) || n > max || !Number.isInteger(n)) throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
      return n;
    },
    show: (v) => (v === 0 && opts.zeroDisables ? '0 (off)' : formatSize(v)),
  };
}

function formatSize(n: number): string {
  for (const [unit, size] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

export function oneOf<const T extends string>(values: readonly T[]): ValueType<T> {
  const rule = `must be one of ${values.join(', ')}`;
  return {
    kind: `one of ${values.join(' | ')}`,
    arg: values.join('|'),
    parse(raw) {
      if (typeof raw === 'string' && (values as readonly string[]).includes(raw)) return raw as T;
      throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
    },
    show: (v) => v,
  };
}

export function boolean(): ValueType<boolean> {
  const rule = 'must be true or false (also 1/0, yes/no, on/off)';
  return {
    kind: 'boolean',
    arg: 'BOOL',
    parse(raw) {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const s = raw.trim().toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(s)) return true;
        if (['0', 'false', 'no', 'off'].includes(s)) return false;
      }
      throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
    },
    show: (v) => String(v),
  };
}

/** A free string; `check` may add a rule. */
export function text(arg: string, check?: (s: string) => string | undefined): ValueType<string> {
  return {
    kind: 'string',
    arg,
    parse(raw) {
      if (typeof raw !== 'string') throw new RuleError(`${describe(raw)} is not valid: must be a string`);
      const problem = check?.(raw);
      if (problem) throw new RuleError(`${describe(raw)} is not valid: ${problem}`);
      return raw;
    },
    show: (v) => v,
  };
}

/** A string that may be unset (undefined). */
export function optionalText(arg: string, check?: (s: string) => string | undefined): ValueType<string | undefined> {
  return {
    kind: 'string',
    arg,
    parse(raw) {
      if (raw === undefined || raw === null || raw === '') return undefined;
      if (typeof raw !== 'string') throw new RuleError(`${describe(raw)} is not valid: must be a string`);
      const problem = check?.(raw);
      if (problem) throw new RuleError(`${describe(raw)} is not valid: ${problem}`);
      return raw;
    },
    show: (v) => v ?? '(unset)',
  };
}

/** A list; from strings it splits on commas (the environment) while the CLI repeats the flag. */
export function list(item: ValueType<string>, opts: { min?: number } = {}): ValueType<string[]> {
  return {
    kind: `list of ${item.kind}`,
    arg: item.arg,
    parse(raw) {
      const parts = Array.isArray(raw)
        ? raw
        : typeof raw === 'string'
          ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
          : [raw];
      const out = parts.map((p) => item.parse(p));
      if (out.length < (opts.min ?? 0)) throw new RuleError(`${describe(raw)} is not valid: needs at least ${opts.min} item(s)`);
      return out;
    },
    show: (v) => v.join(', '),
  };
}

/** A file mode in octal ("0660"). */
export function fileMode(): ValueType<number> {
  const rule = 'must be an octal file mode such as 0660';
  return {
    kind: 'octal mode',
    arg: 'MODE',
    parse(raw) {
      const s = typeof raw === 'number' ? raw.toString(8) : raw;
      if (typeof s !== 'string' || !/^0?[0-7]{3}$/.test(s)) throw new RuleError(`${describe(raw)} is not valid: ${rule}`);
      return parseInt(s, 8);
    },
    show: (v) => '0' + v.toString(8),
  };
}
