/**
 * Distances between two samples or two distributions: Wasserstein-1 (scipy's
 * wasserstein_distance, and Evidently's version normalised by the reference's standard
 * deviation) and the Jensen-Shannon distance (scipy.spatial.distance.jensenshannon).
 */

function sortedValues(values: ArrayLike<number>, label: string): Float64Array {
  const out = Float64Array.from(values as ArrayLike<number>);
  if (out.length === 0) throw new RangeError(`${label} is empty`);
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) throw new RangeError(`${label} contains a value that is not finite`);
  return out.sort();
}

/**
 * Wasserstein-1 distance between two empirical distributions: the area between their CDFs,
 * ∫|U(x) - V(x)| dx, computed exactly over the pooled sorted values.
 */
export function wasserstein1(u: ArrayLike<number>, v: ArrayLike<number>, options: { sorted?: boolean } = {}): number {
  const a = options.sorted ? (u as Float64Array) : sortedValues(u, 'the first sample');
  const b = options.sorted ? (v as Float64Array) : sortedValues(v, 'the second sample');
  const n = a.length;
  const m = b.length;
  let i = 0;
  let j = 0;
  let total = 0;
  let previous = Math.min(a[0]!, b[0]!);
  while (i < n || j < m) {
    const x = j >= m || (i < n && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    // the CDFs are constant on [previous, x): both are taken after every value below x
    total += Math.abs(i / n - j / m) * (x - previous);
    while (i < n && a[i]! <= x) i++;
    while (j < m && b[j]! <= x) j++;
    previous = x;
  }
  return total;
}

/** Population standard deviation (ddof 0, as numpy.std). */
export function populationStd(values: ArrayLike<number>): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i]!;
  mean /= n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i]! - mean) ** 2;
  return Math.sqrt(squares / n);
}

/** The smallest reference spread Evidently divides by, so a constant reference gives a finite score. */
export const WASSERSTEIN_MIN_NORM = 0.001;

/** Wasserstein-1 divided by the reference's population standard deviation (at least 0.001), as Evidently. */
export function normalizedWasserstein(reference: ArrayLike<number>, current: ArrayLike<number>, referenceStd?: number): number {
  const std = referenceStd ?? populationStd(reference);
  return wasserstein1(reference, current) / Math.max(std, WASSERSTEIN_MIN_NORM);
}

/** x·ln(x/y) with scipy's rel_entr conventions (0 when x = 0, +∞ when y = 0 < x). */
function relativeEntropy(x: number, y: number): number {
  if (x > 0 && y > 0) return x * Math.log(x / y);
  if (x === 0 && y >= 0) return 0;
  return Infinity;
}

/**
 * Jensen-Shannon distance between two (not necessarily normalised) weight vectors:
 * sqrt((KL(p‖m) + KL(q‖m)) / 2) with m = (p+q)/2, natural log unless `base` is given.
 */
export function jensenShannon(p: ArrayLike<number>, q: ArrayLike<number>, base?: number): number {
  if (p.length !== q.length) throw new RangeError(`jensenShannon: the vectors have different lengths (${p.length} and ${q.length})`);
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i]! < 0 || q[i]! < 0) throw new RangeError('jensenShannon: weights must not be negative');
    sp += p[i]!;
    sq += q[i]!;
  }
  let left = 0;
  let right = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]! / sp;
    const qi = q[i]! / sq;
    const mi = (pi + qi) / 2;
    left += relativeEntropy(pi, mi);
    right += relativeEntropy(qi, mi);
  }
  let js = left + right;
  if (base !== undefined) js /= Math.log(base);
  return Math.sqrt(js / 2);
}
