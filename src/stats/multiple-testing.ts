/**
 * Multiple-testing corrections for a family of p-values (statsmodels' multipletests with
 * 'bonferroni' and 'fdr_bh'): adjusted p-values and which hypotheses are rejected at alpha.
 */

export type Correction = 'none' | 'bonferroni' | 'fdr_bh';

export interface CorrectionResult {
  adjusted: number[];
  reject: boolean[];
}

export function correctPValues(pValues: readonly number[], method: Correction, alpha = 0.05): CorrectionResult {
  const m = pValues.length;
  if (method === 'none') return { adjusted: [...pValues], reject: pValues.map((p) => p <= alpha) };
  if (method === 'bonferroni') {
    return { adjusted: pValues.map((p) => Math.min(1, p * m)), reject: pValues.map((p) => p <= alpha / m) };
  }
  // Benjamini-Hochberg: p_(i)·m/i, made monotone from the largest down
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const adjusted = new Array<number>(m);
  let running = Infinity;
  for (let rank = m; rank >= 1; rank--) {
    const [p, index] = order[rank - 1]!;
    running = Math.min(running, (p * m) / rank);
    adjusted[index] = Math.min(1, running);
  }
  return { adjusted, reject: adjusted.map((p) => p <= alpha) };
}
