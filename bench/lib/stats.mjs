// Small statistics helpers. Benchmarks on a shared 2-core machine are noisy,
// so the report uses medians and ranges, never means, and compares
// contenders through ratios taken within the same repetition.

export function median(values) {
  const xs = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

function min(values) {
  const xs = values.filter(Number.isFinite);
  return xs.length ? Math.min(...xs) : null;
}

export function max(values) {
  const xs = values.filter(Number.isFinite);
  return xs.length ? Math.max(...xs) : null;
}

export function sum(values) {
  return values.filter(Number.isFinite).reduce((a, b) => a + b, 0);
}

export function summarize(samples) {
  return { samples, n: samples.filter(Number.isFinite).length, median: median(samples), min: min(samples), max: max(samples) };
}

// Ratio a/b for each repetition where both have a value, then the median of
// those ratios: a contender that ran during a noisy second is compared with
// its neighbour from the same moment, not with a quiet run of the other.
export function pairedRatio(a, b) {
  const perRep = [];
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(a[i]) && Number.isFinite(b[i]) && b[i] !== 0) perRep.push(a[i] / b[i]);
    else perRep.push(null);
  }
  return { perRep, median: median(perRep), min: min(perRep), max: max(perRep) };
}

export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
