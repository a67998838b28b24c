/**
 * Two-sample Kolmogorov-Smirnov test, two-sided, with the p-value chosen as scipy's
 * `ks_2samp(method='auto')` chooses it:
 *   - exact when both samples have at most 10,000 values: the proportion of lattice paths
 *     from (0,0) to (n1,n2) that leave the band |x/n1 - y/n2| < D (Hodges 1958), computed for
 *     equal sizes by an alternating series in Horner form and otherwise by the "inside"
 *     recursion rewritten to give 1 - p directly (Viehmann 2021), which avoids cancellation;
 *   - asymptotic otherwise, or when the exact count overflows: P(D_n > D) of the one-sample
 *     statistic with n = round(n1·n2/(n1+n2)) (see kolmogorov.ts).
 * Ties are handled by evaluating both empirical CDFs after every pooled value.
 */
import { kolmogorovSf } from './kolmogorov.js';

export type KsMethod = 'auto' | 'exact' | 'asymp';

export interface KsResult {
  statistic: number;
  pValue: number;
  /** The method that produced the p-value (auto resolves to one of the two). */
  method: 'exact' | 'asymp';
  /** The pooled value at which the ECDFs are furthest apart. */
  location: number;
  /** +1 when the first sample's ECDF is above the second's there, -1 when below. */
  sign: 1 | -1;
}

/** Largest size for which `auto` tries the exact distribution (scipy's MAX_AUTO_N). */
export const KS_EXACT_MAX_N = 10000;

function sortedCopy(values: ArrayLike<number>, label: string): Float64Array {
  const out = Float64Array.from(values as ArrayLike<number>);
  for (let i = 0; i < out.length; i++) if (Number.isNaN(out[i]!)) throw new RangeError(`ks2samp: ${label} contains NaN`);
  return out.sort();
}

/** The two-sided KS statistic of two sorted samples, with where and which way it is attained. */
export function ksStatisticSorted(a: Float64Array, b: Float64Array): { statistic: number; location: number; sign: 1 | -1 } {
  const n1 = a.length;
  const n2 = b.length;
  let i = 0;
  let j = 0;
  let maxUp = -Infinity;
  let maxUpAt = Number.NaN;
  let maxDown = -Infinity;
  let maxDownAt = Number.NaN;
  while (i < n1 || j < n2) {
    // the next pooled value; both ECDFs are taken after all copies of it (ties)
    const x = j >= n2 || (i < n1 && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    while (i < n1 && a[i]! <= x) i++;
    while (j < n2 && b[j]! <= x) j++;
    const diff = i / n1 - j / n2;
    if (diff > maxUp) {
      maxUp = diff;
      maxUpAt = x;
    }
    if (-diff > maxDown) {
      maxDown = -diff;
      maxDownAt = x;
    }
  }
  maxDown = Math.min(1, Math.max(0, maxDown));
  return maxDown > maxUp ? { statistic: maxDown, location: maxDownAt, sign: -1 } : { statistic: maxUp, location: maxUpAt, sign: 1 };
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Round half to even, as numpy does. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** P(D_{n,n} ≥ h/n) = 2·Σ_k (-1)^(k+1) C(2n, n-kh)/C(2n, n), evaluated in Horner form. */
function probOutsideSquare(n: number, h: number): number {
  let p = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let ratio = 1;
    for (let j = 0; j < h; j++) ratio = ((n - k * h - j) * ratio) / (n + k * h + j + 1);
    p = ratio * (1 - p);
  }
  return 2 * p;
}

/**
 * 1 - (paths staying strictly inside |n·x - m·y|/g < h) / C(m+n, n), carried column by column
 * as a proportion so the values stay in [0, 1].
 */
function probOutsideBand(m0: number, n0: number, g: number, h: number): number {
  const m = Math.max(m0, n0);
  const n = Math.min(m0, n0);
  const mg = m / g;
  const ng = n / g;
  let minJ = 0;
  let maxJ = Math.min(Math.ceil(h / mg), n + 1);
  let length = maxJ - minJ;
  const column = new Float64Array(Math.min(2 * maxJ + 2, n + 1)).fill(1);
  column.fill(0, minJ, maxJ);
  // 1/k for every i + j, so the inner loop multiplies instead of dividing (it is latency-bound)
  const reciprocal = new Float64Array(m + n + 1);
  for (let k = 1; k <= m + n; k++) reciprocal[k] = 1 / k;
  for (let i = 1; i <= m; i++) {
    const lastMin = minJ;
    const lastLength = length;
    minJ = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
    maxJ = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (maxJ <= minJ) return 1;
    let value = minJ === 0 ? 0 : 1;
    const shift = minJ - lastMin;
    for (let jj = 0, j = minJ; j < maxJ; jj++, j++) {
      value = (column[jj + shift]! * i + value * j) * reciprocal[i + j]!;
      column[jj] = value;
    }
    length = maxJ - minJ;
    if (lastLength > length) column.fill(1, maxJ - minJ, maxJ - minJ + (lastLength - length));
  }
  return column[maxJ - minJ - 1]!;
}

function exactPValue(n1: number, n2: number, d: number): number | undefined {
  const g = gcd(n1, n2);
  const lcm = (n1 / g) * n2;
  const h = roundHalfEven(d * lcm);
  if (h === 0) return 1;
  const p = n1 === n2 ? probOutsideSquare(n1, h) : probOutsideBand(n1, n2, g, h);
  return Number.isFinite(p) && p >= 0 && p <= 1 ? p : undefined;
}

function asymptoticPValue(n1: number, n2: number, d: number): number {
  const en = (n1 * n2) / (n1 + n2);
  return kolmogorovSf(roundHalfEven(en), d);
}

/** Two-sided two-sample KS test (scipy.stats.ks_2samp with alternative='two-sided'). */
export function ks2samp(sample1: ArrayLike<number>, sample2: ArrayLike<number>, options: { method?: KsMethod; sorted?: boolean } = {}): KsResult {
  const a = options.sorted ? Float64Array.from(sample1) : sortedCopy(sample1, 'the first sample');
  const b = options.sorted ? Float64Array.from(sample2) : sortedCopy(sample2, 'the second sample');
  if (a.length === 0 || b.length === 0) throw new RangeError('ks2samp: both samples need at least one value');
  const { statistic, location, sign } = ksStatisticSorted(a, b);
  const method = options.method ?? 'auto';
  const n1 = a.length;
  const n2 = b.length;
  let useExact = method === 'exact' || (method === 'auto' && Math.max(n1, n2) <= KS_EXACT_MAX_N);
  if (useExact && (n1 / gcd(n1, n2)) * n2 >= 2 ** 31 - 1) useExact = false;
  if (useExact) {
    const p = exactPValue(n1, n2, statistic);
    if (p !== undefined) return { statistic, pValue: Math.min(1, Math.max(0, p)), method: 'exact', location, sign };
  }
  return { statistic, pValue: Math.min(1, Math.max(0, asymptoticPValue(n1, n2, statistic))), method: 'asymp', location, sign };
}
