/**
 * Population Stability Index with a documented binning.
 *
 * Continuous values: by default the bins are the reference's quantiles (deciles for 10 bins,
 * linear interpolation between order statistics as numpy's default quantile), with repeated
 * edges collapsed, the outer bins open to -∞/+∞ so current values outside the reference range
 * still count; a value equal to an interior edge goes to the bin on its right. `equal-width`
 * bins instead split the pooled range into equal parts (numpy.histogram_bin_edges, Evidently's
 * choice). Categories: one bin per category seen in either sample.
 *
 * Empty bins are smoothed as Evidently does: a zero share becomes 0.0001, or, when the smallest
 * non-zero share is itself ≤ 0.0001, that share divided by 10⁶.
 *
 * PSI = Σ (cur - ref) · ln(cur / ref) over the smoothed shares.
 */

export type PsiBinning = 'quantile' | 'equal-width';

/** numpy.quantile with the default linear method, on sorted values. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const position = q * (n - 1);
  const lower = Math.floor(position);
  const upper = Math.min(lower + 1, n - 1);
  const fraction = position - lower;
  const lo = sorted[lower]!;
  const hi = sorted[upper]!;
  return lo + (hi - lo) * fraction;
}

/** Interior edges of `bins` quantile bins of a sorted reference, repeats removed. */
export function quantileEdges(sortedReference: ArrayLike<number>, bins = 10): number[] {
  const edges: number[] = [];
  for (let i = 1; i < bins; i++) {
    const e = quantileSorted(sortedReference, i / bins);
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  return edges;
}

/** Interior edges of `bins` equal-width bins over [min, max] (numpy.histogram_bin_edges). */
export function equalWidthEdges(min: number, max: number, bins = 10): number[] {
  if (min === max) {
    min -= 0.5;
    max += 0.5;
  }
  const edges: number[] = [];
  for (let i = 1; i < bins; i++) edges.push(min + ((max - min) * i) / bins);
  return edges;
}

/** Bin index of a value over interior edges: the number of edges ≤ value (binary search). */
export function binIndex(edges: readonly number[], value: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Counts of values per bin over interior edges (edges.length + 1 bins). */
export function binCounts(edges: readonly number[], values: ArrayLike<number>): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isNaN(v)) counts[binIndex(edges, v)]!++;
  }
  return counts;
}

/** Shares from counts with Evidently's empty-bin smoothing. */
export function smoothedShares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const shares = counts.map((c) => (total > 0 ? c / total : 0));
  let smallest = Infinity;
  for (const s of shares) if (s > 0 && s < smallest) smallest = s;
  const fill = smallest <= 0.0001 ? smallest / 1e6 : 0.0001;
  return shares.map((s) => (s === 0 ? fill : s));
}

/** PSI between two count vectors over the same bins. */
export function psiFromCounts(referenceCounts: readonly number[], currentCounts: readonly number[]): number {
  if (referenceCounts.length !== currentCounts.length) throw new RangeError('psi: the two histograms have different numbers of bins');
  const ref = smoothedShares(referenceCounts);
  const cur = smoothedShares(currentCounts);
  let psi = 0;
  for (let i = 0; i < ref.length; i++) psi += (cur[i]! - ref[i]!) * Math.log(cur[i]! / ref[i]!);
  return psi;
}

/** PSI of two continuous samples with the binning above. */
export function psi(reference: ArrayLike<number>, current: ArrayLike<number>, options: { bins?: number; binning?: PsiBinning } = {}): number {
  const bins = options.bins ?? 10;
  const sorted = Float64Array.from(reference as ArrayLike<number>).sort();
  if (sorted.length === 0 || current.length === 0) throw new RangeError('psi: both samples need at least one value');
  let edges: number[];
  if ((options.binning ?? 'quantile') === 'quantile') {
    edges = quantileEdges(sorted, bins);
  } else {
    let min = sorted[0]!;
    let max = sorted[sorted.length - 1]!;
    for (let i = 0; i < current.length; i++) {
      min = Math.min(min, current[i]!);
      max = Math.max(max, current[i]!);
    }
    edges = equalWidthEdges(min, max, bins);
  }
  return psiFromCounts(binCounts(edges, sorted), binCounts(edges, current));
}

/** PSI of two categorical samples: one bin per category seen in either. */
export function psiCategorical(referenceCounts: ReadonlyMap<string, number>, currentCounts: ReadonlyMap<string, number>): number {
  const keys = [...new Set([...referenceCounts.keys(), ...currentCounts.keys()])];
  return psiFromCounts(
    keys.map((k) => referenceCounts.get(k) ?? 0),
    keys.map((k) => currentCounts.get(k) ?? 0),
  );
}
