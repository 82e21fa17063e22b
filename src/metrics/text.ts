/** Prometheus text exposition format 0.0.4: the few rules corral needs to write it. */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Readonly<Record<string, string | number>>;

export interface Sample {
  /** The sample's name when it differs from the family's (`_bucket`, `_sum`, `_count`). */
  name?: string;
  labels?: Labels;
  value: number;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return '{' + keys.map((k) => `${k}="${escapeLabel(String(labels[k]))}"`).join(',') + '}';
}

/** One family: HELP, TYPE and its samples. An empty family still says what it is. */
export function renderFamily(name: string, type: string, help: string, samples: readonly Sample[]): string {
  let out = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
  for (const s of samples) out += `${s.name ?? name}${formatLabels(s.labels)} ${formatValue(s.value)}\n`;
  return out;
}

/** The samples of a histogram from per-bucket counts (the last one +Inf) and the sum. */
export function histogramSamples(name: string, bounds: readonly number[], counts: readonly number[], sum: number, labels: Labels): Sample[] {
  const out: Sample[] = [];
  let acc = 0;
  for (let i = 0; i <= bounds.length; i++) {
    acc += counts[i] ?? 0;
    out.push({ name: `${name}_bucket`, labels: { ...labels, le: i < bounds.length ? formatValue(bounds[i]!) : '+Inf' }, value: acc });
  }
  out.push({ name: `${name}_sum`, labels, value: sum });
  out.push({ name: `${name}_count`, labels, value: acc });
  return out;
}
