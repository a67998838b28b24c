import { describe, expect, it } from 'vitest';
import {
  chiSquareContingency,
  chiSquareGoodnessOfFit,
  correctPValues,
  jensenShannon,
  kolmogorovSf,
  ks2samp,
  normalizedWasserstein,
  wasserstein1,
} from '../../src/stats/index.js';
import { expectRelClose, normalSample, scipyReference, seeded } from './support.js';

const random = seeded(20261130);
const round = (xs: number[], step: number): number[] => xs.map((x) => Math.round(x / step) * step);

interface SamplePair {
  label: string;
  a: number[];
  b: number[];
}

/** Sizes 5 … 100,000, same and shifted distributions, heavy ties, constant columns. */
function samplePairs(): SamplePair[] {
  const pairs: SamplePair[] = [];
  const sizes: Array<[number, number]> = [
    [5, 5], [5, 8], [7, 10], [20, 20], [50, 60], [100, 80], [500, 500], [1000, 1000], [1000, 1500],
    [3000, 2000], [10000, 10000], [10000, 300], [20000, 15000], [100000, 100000], [100000, 5], [100000, 60], [100000, 300],
  ];
  for (const [n1, n2] of sizes) {
    pairs.push({ label: `normal ${n1}x${n2} same`, a: normalSample(random, n1), b: normalSample(random, n2) });
    pairs.push({ label: `normal ${n1}x${n2} shifted`, a: normalSample(random, n1), b: normalSample(random, n2, 0.3, 1.2) });
  }
  pairs.push({ label: 'ties 200x300', a: round(normalSample(random, 200), 0.5), b: round(normalSample(random, 300, 0.2), 0.5) });
  pairs.push({ label: 'ties 5000x4000', a: round(normalSample(random, 5000), 1), b: round(normalSample(random, 4000, 0.05), 1) });
  pairs.push({ label: 'ties 50000x50000', a: round(normalSample(random, 50000), 0.25), b: round(normalSample(random, 50000, 0.01), 0.25) });
  pairs.push({ label: 'constant both', a: new Array(40).fill(3), b: new Array(30).fill(3) });
  pairs.push({ label: 'constant vs varied', a: new Array(40).fill(0), b: normalSample(random, 30) });
  pairs.push({ label: 'disjoint', a: normalSample(random, 25), b: normalSample(random, 25, 100) });
  return pairs;
}

describe('parity with scipy', () => {
  const pairs = samplePairs();

  it('two-sample KS statistic and p-value (method auto) equal scipy.stats.ks_2samp', () => {
    const reference = scipyReference(pairs.map((p) => ({ kind: 'ks_2samp', a: p.a, b: p.b })));
    const methods = new Set<string>();
    pairs.forEach((pair, i) => {
      const r = ks2samp(pair.a, pair.b);
      methods.add(r.method);
      expectRelClose(r.statistic, reference[i]!.statistic, `${pair.label} statistic`);
      expectRelClose(r.pValue, reference[i]!.pvalue, `${pair.label} p-value`);
    });
    expect([...methods].sort()).toEqual(['asymp', 'exact']);
  });

  it('KS exact and asymptotic methods forced', () => {
    const chosen = pairs.filter((p) => p.a.length <= 3000 && p.b.length <= 3000);
    const cases = chosen.flatMap((p) => [
      { kind: 'ks_2samp', a: p.a, b: p.b, method: 'exact' },
      { kind: 'ks_2samp', a: p.a, b: p.b, method: 'asymp' },
    ]);
    const reference = scipyReference(cases);
    chosen.forEach((pair, i) => {
      expectRelClose(ks2samp(pair.a, pair.b, { method: 'exact' }).pValue, reference[2 * i]!.pvalue, `${pair.label} exact`);
      expectRelClose(ks2samp(pair.a, pair.b, { method: 'asymp' }).pValue, reference[2 * i + 1]!.pvalue, `${pair.label} asymp`);
    });
  });

  it('the finite-n Kolmogorov distribution equals scipy.stats.kstwo.sf in every region', () => {
    const cases: Array<{ kind: string; n: number; x: number }> = [];
    for (const n of [1, 2, 5, 10, 30, 100, 140, 141, 300, 1000, 5000, 20000, 50000, 100000, 150000]) {
      for (const z of [0.2, 0.4, 0.6, 0.8, 0.87, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0]) cases.push({ kind: 'kstwo_sf', n, x: Math.min(z / Math.sqrt(n), 0.999) });
      for (const x of [0.6 / n, 0.9 / n, 0.3, 0.5, 0.7, 1 - 1.5 / n]) if (x > 0 && x < 1) cases.push({ kind: 'kstwo_sf', n, x });
    }
    const reference = scipyReference(cases);
    cases.forEach((c, i) => expectRelClose(kolmogorovSf(c.n, c.x), reference[i]!.sf, `kstwo.sf(${c.x}, ${c.n})`));
  });

  it('Wasserstein-1, raw and normalised by the reference std, equals scipy', () => {
    const reference = scipyReference(pairs.map((p) => ({ kind: 'wasserstein', a: p.a, b: p.b })));
    pairs.forEach((pair, i) => {
      expectRelClose(wasserstein1(pair.a, pair.b), reference[i]!.distance, `${pair.label} wasserstein`);
      expectRelClose(normalizedWasserstein(pair.a, pair.b), reference[i]!.normalized, `${pair.label} normalised wasserstein`);
    });
  });

  it('Jensen-Shannon distance equals scipy.spatial.distance.jensenshannon (natural log and base 2)', () => {
    const vectors: Array<[number[], number[]]> = [
      [[1, 2, 3], [3, 2, 1]],
      [[0.5, 0.5, 0], [0, 0.5, 0.5]],
      [[10, 0, 5, 0], [10, 0, 5, 0]],
      [[1, 0, 0], [0, 0, 1]],
      [[120, 30, 0, 7], [100, 40, 3, 0]],
    ];
    for (let i = 0; i < 20; i++) {
      const k = 2 + Math.floor(random() * 30);
      vectors.push([Array.from({ length: k }, () => Math.floor(random() * 1000)), Array.from({ length: k }, () => Math.floor(random() * 1000))]);
    }
    const cases = vectors.flatMap(([p, q]) => [
      { kind: 'jensenshannon', p, q },
      { kind: 'jensenshannon', p, q, base: 2 },
    ]);
    const reference = scipyReference(cases);
    vectors.forEach(([p, q], i) => {
      expectRelClose(jensenShannon(p, q), reference[2 * i]!.distance, `js ${i}`);
      expectRelClose(jensenShannon(p, q, 2), reference[2 * i + 1]!.distance, `js base 2 ${i}`);
    });
  });

  it('chi-square goodness of fit and contingency tables equal scipy (Yates for 2x2, one empty category)', () => {
    const fits: Array<{ observed: number[]; expected?: number[] }> = [
      { observed: [16, 18, 16, 14, 12, 12] },
      { observed: [16, 18, 16, 14, 12, 12], expected: [16, 16, 16, 16, 16, 8] },
      { observed: [0, 50, 50], expected: [10, 45, 45] },
      { observed: [1000, 1200, 800, 5], expected: [950.5, 1150.5, 900, 4] },
      { observed: [5, 0, 5], expected: [4, 2, 4] },
    ];
    const tables: number[][][] = [
      [[12, 5], [7, 9]],
      [[120, 80, 40], [100, 90, 60]],
      [[3, 0, 7], [4, 9, 1], [10, 2, 2]],
      [[5000, 3000, 2000, 500], [4800, 3300, 1900, 600]],
      [[1, 0], [0, 1]],
    ];
    const cases = [
      ...fits.map((f) => ({ kind: 'chisquare', observed: f.observed, expected: f.expected ?? null })),
      ...tables.flatMap((table) => [
        { kind: 'chi2_contingency', table },
        { kind: 'chi2_contingency', table, correction: false },
      ]),
    ];
    const reference = scipyReference(cases);
    fits.forEach((f, i) => {
      const r = chiSquareGoodnessOfFit(f.observed, f.expected);
      expectRelClose(r.statistic, reference[i]!.statistic, `gof ${i} statistic`);
      expectRelClose(r.pValue, reference[i]!.pvalue, `gof ${i} p-value`);
    });
    tables.forEach((table, i) => {
      for (const [j, correction] of [[0, true], [1, false]] as const) {
        const ref = reference[fits.length + 2 * i + j]!;
        const r = chiSquareContingency(table, { correction });
        expectRelClose(r.statistic, ref.statistic, `table ${i} (correction ${correction}) statistic`);
        expectRelClose(r.pValue, ref.pvalue, `table ${i} (correction ${correction}) p-value`);
        expect(r.dof).toBe(ref.dof);
      }
    });
    expect(() => chiSquareContingency([[1, 0], [2, 0]])).toThrow(/expected frequency at \(0, 1\) is zero/);
  });

  it('Bonferroni and Benjamini-Hochberg equal statsmodels multipletests', () => {
    const families = [
      [0.01, 0.04, 0.03, 0.005, 0.2, 0.5],
      [0.001, 0.001, 0.9, 0.049, 0.051],
      Array.from({ length: 30 }, () => random() ** 3),
      [1, 1, 1],
    ];
    const reference = scipyReference<Record<string, { adjusted: number[]; reject: boolean[] }>>(families.map((p) => ({ kind: 'multipletests', p })));
    families.forEach((p, i) => {
      for (const method of ['bonferroni', 'fdr_bh'] as const) {
        const r = correctPValues(p, method);
        r.adjusted.forEach((a, j) => expectRelClose(a, reference[i]![method]!.adjusted[j], `${method} family ${i} #${j}`));
        expect(r.reject).toEqual(reference[i]![method]!.reject);
      }
    });
  });
});
