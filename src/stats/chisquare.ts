/**
 * Pearson chi-square tests with scipy's conventions: goodness of fit on category counts
 * (scipy.stats.chisquare) and independence in a contingency table (scipy.stats.chi2_contingency,
 * Yates' continuity correction when there is one degree of freedom, on by default).
 */
import { chi2Sf } from './distributions.js';

export interface ChiSquareResult {
  statistic: number;
  pValue: number;
  dof: number;
}

/**
 * Goodness of fit of observed counts to expected counts (default: all equal). The two must
 * have the same total (relative tolerance 1e-8, as scipy).
 */
export function chiSquareGoodnessOfFit(observed: readonly number[], expected?: readonly number[], ddof = 0): ChiSquareResult {
  const k = observed.length;
  if (k === 0) throw new RangeError('chi-square: no categories');
  const totalObserved = observed.reduce((a, b) => a + b, 0);
  const exp = expected ?? observed.map(() => totalObserved / k);
  if (exp.length !== k) throw new RangeError(`chi-square: ${k} observed counts but ${exp.length} expected ones`);
  const totalExpected = exp.reduce((a, b) => a + b, 0);
  if (Math.abs(totalObserved - totalExpected) > 1e-8 * Math.max(Math.abs(totalObserved), Math.abs(totalExpected))) {
    throw new RangeError(`chi-square: observed counts sum to ${totalObserved} but expected ones to ${totalExpected}; they must agree`);
  }
  let statistic = 0;
  for (let i = 0; i < k; i++) statistic += (observed[i]! - exp[i]!) ** 2 / exp[i]!;
  const dof = k - 1 - ddof;
  return { statistic, pValue: chi2Sf(statistic, dof), dof };
}

export interface ContingencyResult extends ChiSquareResult {
  expected: number[][];
}

/** Chi-square test of independence on an r×c table of counts. */
export function chiSquareContingency(table: readonly (readonly number[])[], options: { correction?: boolean } = {}): ContingencyResult {
  const rows = table.length;
  const cols = table[0]?.length ?? 0;
  if (rows === 0 || cols === 0) throw new RangeError('chi-square contingency: the table is empty');
  for (const row of table) {
    if (row.length !== cols) throw new RangeError('chi-square contingency: rows have different lengths');
    for (const v of row) if (!(v >= 0)) throw new RangeError('chi-square contingency: counts must be non-negative numbers');
  }
  const rowSums = table.map((r) => r.reduce((a, b) => a + b, 0));
  const colSums = Array.from({ length: cols }, (_, j) => table.reduce((a, r) => a + r[j]!, 0));
  const total = rowSums.reduce((a, b) => a + b, 0);
  const expected = table.map((_, i) => colSums.map((c) => (rowSums[i]! * c) / total));
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      if (expected[i]![j] === 0) throw new RangeError(`chi-square contingency: the expected frequency at (${i}, ${j}) is zero (an empty row or column); drop it first`);
    }
  }
  const dof = rows * cols - rows - cols + 1;
  if (dof === 0) return { statistic: 0, pValue: 1, dof, expected };
  const yates = (options.correction ?? true) && dof === 1;
  let statistic = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const e = expected[i]![j]!;
      let o = table[i]![j]!;
      if (yates) o += Math.sign(e - o) * Math.min(0.5, Math.abs(e - o));
      statistic += (o - e) ** 2 / e;
    }
  }
  return { statistic, pValue: chi2Sf(statistic, dof), dof, expected };
}
