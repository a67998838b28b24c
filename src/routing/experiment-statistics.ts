/**
 * What the experiment analysis needs from a statistics library, as one interface, and a small
 * implementation of it over @stdlib distributions. The server's statistics module (two-
 * proportion z-test, Welch's t-test, chi-square, sample sizes, sequential tests) implements the
 * same interface and replaces `basicStatistics` where the service is built.
 */
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';

export interface TestResult {
  test: string;
  statistic: number;
  pValue: number;
  /** Treatment minus control. */
  difference: number;
  /** Confidence interval of the difference at 1 - alpha. */
  interval: [number, number];
}

export interface GroupMoments {
  n: number;
  mean: number;
  /** Sample variance (n - 1 denominator). */
  variance: number;
}

export interface ExperimentStatistics {
  /** Two-sided z-test of two proportions (pooled statistic, unpooled Wald interval). */
  twoProportionZTest(control: { successes: number; n: number }, treatment: { successes: number; n: number }, alpha: number): TestResult;
  /** Two-sided Welch t-test of two means. */
  welchTTest(control: GroupMoments, treatment: GroupMoments, alpha: number): TestResult;
  /** Per-group sample size of a two-sided two-proportion test. */
  twoProportionSampleSize(baseline: number, mde: number, options: { relative: boolean; alpha: number; power: number }): number;
  /**
   * Always-valid p-value of a sequential test (mSPRT) of two proportions: safe to read at any
   * time. When present, an experiment may stop as soon as it falls below alpha.
   */
  sequentialTwoProportion?(control: { successes: number; n: number }, treatment: { successes: number; n: number }): { pValue: number };
  /**
   * Pearson chi-square test of independence on a variants × categories table of counts, with
   * no continuity correction at any size (2x2 included). Without it, categorical outcomes get
   * no test in the report.
   */
  chiSquareIndependence?(table: readonly (readonly number[])[]): { statistic: number; dof: number; pValue: number };
  /** Per-group sample size in the Cohen's h form (normal power of h = 2·asin√p2 - 2·asin√p1), unrounded. */
  cohenHSampleSize?(baseline: number, mde: number, options: { relative: boolean; alpha: number; power: number }): number;
}

/**
 * Per-group sample size for detecting p1 → p2 with a two-sided test:
 *   n = ((z_{1-α/2} √(2 p̄ (1 - p̄)) + z_{power} √(p1 (1 - p1) + p2 (1 - p2))) / (p2 - p1))²,
 * p̄ = (p1 + p2) / 2, rounded up. For a 3% baseline and a 20% relative lift it is 13,914.
 */
export function twoProportionSampleSize(baseline: number, mde: number, options: { relative?: boolean; alpha?: number; power?: number } = {}): number {
  const relative = options.relative ?? true;
  const alpha = options.alpha ?? 0.05;
  const power = options.power ?? 0.8;
  if (!(baseline > 0 && baseline < 1)) throw new RangeError(`baseline rate ${baseline} is not in (0, 1)`);
  if (!(mde > 0)) throw new RangeError(`minimum detectable effect ${mde} must be > 0`);
  if (!(alpha > 0 && alpha < 1) || !(power > 0 && power < 1)) throw new RangeError('alpha and power must be in (0, 1)');
  const p1 = baseline;
  const p2 = relative ? baseline * (1 + mde) : baseline + mde;
  if (!(p2 < 1)) throw new RangeError(`the treatment rate ${p2} implied by baseline ${baseline} and mde ${mde} is not below 1`);
  const zAlpha = normalQuantile(1 - alpha / 2, 0, 1);
  const zBeta = normalQuantile(power, 0, 1);
  const pBar = (p1 + p2) / 2;
  const n = ((zAlpha * Math.sqrt(2 * pBar * (1 - pBar)) + zBeta * Math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) / (p2 - p1)) ** 2;
  // Round away float noise below 1e-9 before taking the ceiling.
  return Math.ceil(n - 1e-9);
}

export const basicStatistics: ExperimentStatistics = {
  twoProportionZTest(control, treatment, alpha) {
    const p1 = control.successes / control.n;
    const p2 = treatment.successes / treatment.n;
    const pooled = (control.successes + treatment.successes) / (control.n + treatment.n);
    const se0 = Math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n));
    const z = se0 === 0 ? 0 : (p2 - p1) / se0;
    const se = Math.sqrt((p1 * (1 - p1)) / control.n + (p2 * (1 - p2)) / treatment.n);
    const q = normalQuantile(1 - alpha / 2, 0, 1);
    return { test: 'two_proportion_z', statistic: z, pValue: 2 * normalCdf(-Math.abs(z), 0, 1), difference: p2 - p1, interval: [p2 - p1 - q * se, p2 - p1 + q * se] };
  },
  welchTTest(control, treatment, alpha) {
    const a = control.variance / control.n;
    const b = treatment.variance / treatment.n;
    const se = Math.sqrt(a + b);
    const df = (a + b) ** 2 / (a ** 2 / (control.n - 1) + b ** 2 / (treatment.n - 1));
    const difference = treatment.mean - control.mean;
    const t = se === 0 ? 0 : difference / se;
    const q = tQuantile(1 - alpha / 2, df);
    return { test: 'welch_t', statistic: t, pValue: 2 * tCdf(-Math.abs(t), df), difference, interval: [difference - q * se, difference + q * se] };
  },
  twoProportionSampleSize: (baseline, mde, options) => twoProportionSampleSize(baseline, mde, options),
};
