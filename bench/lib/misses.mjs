// The "Targets missed" section of RESULTS.md. Its text is hand-written in
// bench/MISSES.md, so it survives regeneration; its figures are not: each
// {{...}} placeholder is filled from the newest results when RESULTS.md is
// written, so a new run updates the numbers and the text keeps the reasons.
//
//   {{target TEXT}}                    the target's value, goal and gap, e.g.
//                                      "0.918x (goal >= 1x; 8.2% short)"
//   {{median SCENARIO | LABEL | NAME}}  a contender's median of that metric
//   {{ratio SCENARIO | LABEL | A/B}}    median of same-run A/B ratios
//
// TEXT and LABEL may hold `*` for any characters (the memory scenario puts
// its request count in its labels). A placeholder that matches nothing
// renders as a visible "(no result: ...)".
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pairedRatio, round } from './stats.mjs';

const MISSES_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'MISSES.md');

function glob(pattern) {
  const re = pattern.trim().split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${re}$`);
}

function unitText(unit) {
  return unit === 'x' || unit === '%' ? unit : ` ${unit.trim()}`;
}

/** @public test/bench/misses.test.ts loads it by path, which knip cannot follow. */
export function gapText(t) {
  if (t.value === null) return 'no value';
  if (t.pass) return 'met';
  const over = t.op === '<=';
  if (t.goal !== 0 && (t.unit === 'x' || t.unit === '%')) {
    const pct = round(Math.abs(t.value / t.goal - 1) * 100, 1);
    return `${pct}% ${over ? 'over' : 'short'}`;
  }
  return `${round(Math.abs(t.value - t.goal), 3)}${unitText(t.unit)} ${over ? 'over' : 'short'}`;
}

function targetText(results, pattern) {
  const re = glob(pattern);
  for (const r of results) {
    const t = r.targets.find((x) => re.test(x.text));
    if (!t) continue;
    const value = t.value === null ? 'n/a' : `${round(t.value, 3)}${unitText(t.unit)}`;
    return `${value} (goal ${t.op} ${t.goal}${unitText(t.unit)}; ${gapText(t)}; ${r.scenario} run of ${r.date.slice(0, 10)})`;
  }
  return null;
}

function findMetric(results, scenario, label) {
  const r = results.find((x) => x.scenario === scenario.trim());
  const re = glob(label);
  return r && r.metrics.find((m) => re.test(m.label));
}

function metricText(results, kind, args) {
  const [scenario, label, which] = args.split('|').map((s) => s.trim());
  if (!scenario || !label || !which) return null;
  const m = findMetric(results, scenario, label);
  if (!m) return null;
  if (kind === 'median') {
    const s = m.contenders[which];
    return s && Number.isFinite(s.median) ? `${round(s.median, m.unit === 'ms' || m.unit === 'MiB' ? 1 : 3)}${unitText(m.unit)}` : null;
  }
  const [a, b] = which.split('/');
  const sa = m.contenders[a];
  const sb = m.contenders[b];
  if (!sa || !sb) return null;
  const r = pairedRatio(sa.samples, sb.samples);
  return Number.isFinite(r.median) ? `${round(r.median, 3)}x` : null;
}

// The section's markdown, or [] when there is no MISSES.md.
export function missesSection(results, file = MISSES_FILE) {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8').replace(/<!--[\s\S]*?-->\n?/g, '');
  const filled = text.replace(/\{\{\s*(target|median|ratio)\s+([^}]+)\}\}/g, (whole, kind, args) => {
    const out = kind === 'target' ? targetText(results, args) : metricText(results, kind, args);
    return out ?? `(no result: ${args.trim()})`;
  });
  return filled.trim().split('\n');
}
