/**
 * The experiment report's categorical test and Cohen's h sample size against scipy and
 * statsmodels, computed at test time in the Python venv, on grids of inputs.
 */
import { describe, expect, it } from 'vitest';
import { exactStatistics } from '../../src/routing/exact-statistics.js';
import { categoricalTest, type VariantReport } from '../../src/routing/experiment.js';
import { sampleSizeCohenH, twoProportionZTest } from '../../src/stats/index.js';
import { expectRelClose, scipyReference, seeded, value } from './support.js';

const random = seeded(424242);

function variantsOf(table: number[][], categories: string[]): VariantReport[] {
  return table.map((row, i) => ({
    variant: `v${i}`,
    version: String(i + 1),
    weight: 100 / table.length,
    served: row.reduce((a, b) => a + b, 0),
    outcomes: 0,
    rate: null,
    stddev: null,
    labels: Object.fromEntries(categories.map((c, j) => [c, row[j]!])),
  }));
}

/** r × c tables of 2..5 variants and 2..6 categories, counts from a handful to 10^5 a cell, equal and skewed label mixes. */
function tables(): number[][][] {
  const out: number[][][] = [[[12, 5], [7, 9]], [[420, 13494], [500, 13414]], [[1, 4], [4, 1]]];
  for (const rows of [2, 3, 4, 5]) {
    for (const cols of [2, 3, 4, 6]) {
      for (const scale of [8, 200, 30_000]) {
        // Shifts that keep the p-values above double underflow (scipy reports 0 below ~1e-308).
        for (const shift of scale > 1000 ? [0, 0.02, 0.1] : [0, 0.15, 0.4]) {
          const base = Array.from({ length: cols }, () => 0.2 + random());
          out.push(
            Array.from({ length: rows }, (_, i) =>
              base.map((w, j) => Math.max(1, Math.round(scale * w * (1 + (j === i % cols ? shift : 0)) * (0.8 + 0.4 * random())))),
            ),
          );
        }
      }
    }
  }
  return out;
}

describe('categorical outcomes: chi-square of the variants x labels table', () => {
  it('equals scipy.stats.chi2_contingency(correction=False) on a grid, 2x2 included', () => {
    const grid = tables();
    const reference = scipyReference(grid.map((table) => ({ kind: 'chi2_contingency', table, correction: false })));
    let tiny = 0;
    grid.forEach((table, i) => {
      const categories = table[0]!.map((_, j) => `c${j}`);
      const { test, note } = categoricalTest(variantsOf(table, categories), exactStatistics, 0.05);
      expect(note, `table ${i}`).toBeNull();
      expect(test!.counts).toEqual(table);
      expectRelClose(test!.statistic, reference[i]!.statistic, `table ${i} ${table.length}x${table[0]!.length} statistic`);
      expectRelClose(test!.pValue, reference[i]!.pvalue, `table ${i} p-value`);
      expect(test!.dof).toBe(reference[i]!.dof);
      expect(test!.significant).toBe(value(reference[i]!.pvalue) < 0.05);
      if (value(reference[i]!.pvalue) < 1e-30) tiny += 1;
    });
    // Large shifted tables reach p-values far below 1e-30: the upper tail keeps its relative precision there.
    expect(tiny).toBeGreaterThan(5);
  });

  it('2x2 is Pearson without Yates: the square of the two-proportion z the report gives, not scipy default', () => {
    const cases = [[[30, 970], [45, 955]], [[12, 5], [7, 9]], [[420, 13494], [500, 13414]]];
    const corrected = scipyReference(cases.map((table) => ({ kind: 'chi2_contingency', table })));
    cases.forEach((table, i) => {
      const { test } = categoricalTest(variantsOf(table, ['yes', 'no']), exactStatistics, 0.05);
      const z = twoProportionZTest(table[1]![0]!, table[1]![0]! + table[1]![1]!, table[0]![0]!, table[0]![0]! + table[0]![1]!);
      expectRelClose(test!.statistic, z.z * z.z, `2x2 ${i} chi-square = z^2`);
      expectRelClose(test!.pValue, z.pValue, `2x2 ${i} p-value = z-test p-value`);
      expect(test!.correction).toBe('none');
      expect(test!.statistic).toBeGreaterThan(value(corrected[i]!.statistic));
    });
  });

  it('drops empty rows and columns, and says why when there is no test', () => {
    const v = variantsOf([[5, 0, 7], [3, 0, 9], [0, 0, 0]], ['a', 'b', 'c']);
    const { test } = categoricalTest(v, exactStatistics, 0.05);
    expect(test).toMatchObject({ variants: ['v0', 'v1'], categories: ['a', 'c'], counts: [[5, 7], [3, 9]], dof: 1 });
    expect(categoricalTest(variantsOf([[5, 0], [0, 0]], ['a', 'b']), exactStatistics, 0.05)).toEqual({ test: null, note: 'labelled feedback from one variant only (v0)' });
    expect(categoricalTest(variantsOf([[5, 0], [2, 0]], ['a', 'b']), exactStatistics, 0.05)).toEqual({ test: null, note: "every label is 'a'" });
    expect(categoricalTest(variantsOf([[0], [0]], ['a']), exactStatistics, 0.05).note).toBe('no labelled feedback');
    const many = Array.from({ length: 101 }, (_, j) => `l${j}`);
    expect(categoricalTest(variantsOf([many.map(() => 1), many.map(() => 2)], many), exactStatistics, 0.05).note).toMatch(/101 distinct labels, more than the 100/);
  });
});

describe("sample size in the Cohen's h form", () => {
  it('equals statsmodels NormalIndPower().solve_power(proportion_effectsize(p2, p1)) on a grid', () => {
    const grid: Array<{ baseline: number; mde: number; relative: boolean; alpha: number; power: number }> = [];
    for (const baseline of [0.005, 0.03, 0.1, 0.3, 0.5, 0.7])
      for (const mde of [0.02, 0.1, 0.2, 0.3])
        for (const [alpha, power] of [[0.05, 0.8], [0.01, 0.9], [0.1, 0.7], [0.05, 0.95]] as const) {
          grid.push({ baseline, mde, relative: true, alpha, power });
          if (baseline + mde < 1) grid.push({ baseline, mde, relative: false, alpha, power });
        }
    const reference = scipyReference(grid.map((g) => ({ kind: 'cohen_h_sample_size', ...g })));
    grid.forEach((g, i) => {
      const label = `baseline ${g.baseline} mde ${g.mde}${g.relative ? ' relative' : ''} alpha ${g.alpha} power ${g.power}`;
      const size = sampleSizeCohenH(g);
      const ref = reference[i]!;
      // The root of statsmodels' power equation, to full precision: 1e-9 relative.
      expectRelClose(size.exact, ref.root, `${label} exact root`);
      expectRelClose(exactStatistics.cohenHSampleSize!(g.baseline, g.mde, g), ref.root, `${label} through the report's statistics`);
      // solve_power itself stops at brentq's xtol = 1e-5 (absolute): within it, and the same whole number.
      const solved = value(ref.solve_power);
      expect(Math.abs(size.exact - solved), label).toBeLessThan(2e-5);
      expect(size.perGroup, label).toBe(Math.ceil(solved));
    });
    expect(sampleSizeCohenH({ baseline: 0.03, mde: 0.2 }).perGroup).toBe(13_887);
  });
});
