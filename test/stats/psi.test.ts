import { describe, expect, it } from 'vitest';
import { binCounts, psi, psiCategorical, quantileEdges, smoothedShares } from '../../src/stats/index.js';
import { normalSample, seeded } from './support.js';

/**
 * A plain re-statement of the documented binning (sort, numpy-style quantiles, half-open bins
 * [e_i, e_{i+1}) with open ends, Evidently's smoothing), written independently of src/stats/psi.ts.
 */
function referencePsi(reference: number[], current: number[], bins = 10): number {
  const sorted = [...reference].sort((a, b) => a - b);
  const q = (p: number): number => {
    const h = (sorted.length - 1) * p;
    const lo = Math.floor(h);
    return sorted[lo]! + (h - lo) * ((sorted[Math.min(lo + 1, sorted.length - 1)] ?? 0) - sorted[lo]!);
  };
  const edges = [...new Set(Array.from({ length: bins - 1 }, (_, i) => q((i + 1) / bins)))];
  const hist = (xs: number[]): number[] => {
    const counts = new Array(edges.length + 1).fill(0) as number[];
    for (const x of xs) counts[edges.filter((e) => e <= x).length]!++;
    return counts.map((c) => c / xs.length);
  };
  const smooth = (shares: number[]): number[] => {
    const nonzero = shares.filter((s) => s > 0);
    const min = Math.min(...nonzero);
    return shares.map((s) => (s === 0 ? (min <= 0.0001 ? min / 1e6 : 0.0001) : s));
  };
  const r = smooth(hist(reference));
  const c = smooth(hist(current));
  return r.reduce((sum, ri, i) => sum + (c[i]! - ri) * Math.log(c[i]! / ri), 0);
}

describe('PSI', () => {
  const random = seeded(99);

  it('equals the reference implementation of the documented binning', () => {
    for (const [n1, n2, shift] of [[100, 100, 0], [1000, 500, 0.1], [5000, 5000, 0.5], [200, 50, 2], [100000, 10000, 0.05]] as const) {
      const a = normalSample(random, n1);
      const b = normalSample(random, n2, shift);
      expect(psi(a, b)).toBeCloseTo(referencePsi(a, b), 12);
    }
    const ties = normalSample(random, 500).map((x) => Math.round(x));
    const ties2 = normalSample(random, 400, 0.3).map((x) => Math.round(x));
    expect(psi(ties, ties2)).toBeCloseTo(referencePsi(ties, ties2), 12);
  });

  it('is zero for identical samples and grows with the shift', () => {
    const a = normalSample(random, 2000);
    expect(psi(a, a)).toBe(0);
    const small = psi(a, normalSample(random, 2000, 0.2));
    const large = psi(a, normalSample(random, 2000, 1));
    expect(large).toBeGreaterThan(small);
    expect(large).toBeGreaterThan(0.25);
  });

  it('collapses repeated quantile edges of a constant column and smooths empty bins', () => {
    const constant = new Array(100).fill(5);
    expect(quantileEdges(Float64Array.from(constant))).toEqual([5]);
    expect(binCounts([5], [4, 5, 6])).toEqual([1, 2]);
    expect(smoothedShares([0, 10])).toEqual([0.0001, 1]);
    expect(smoothedShares([0, 1, 99999])[0]).toBeCloseTo(1e-5 / 1e6, 20);
    expect(Number.isFinite(psi(constant, [6, 6, 6]))).toBe(true);
  });

  it('bins categories by name, one empty category included', () => {
    const ref = new Map([['a', 50], ['b', 50], ['c', 0]]);
    const cur = new Map([['a', 50], ['b', 40], ['c', 10]]);
    const expected = (0.4 - 0.5) * Math.log(0.4 / 0.5) + (0.1 - 0.0001) * Math.log(0.1 / 0.0001);
    expect(psiCategorical(ref, cur)).toBeCloseTo(expected, 12);
  });
});
