/**
 * Statistics for comparing two variants of a model: sample size and duration planning,
 * two-proportion z-test, Welch's t-test, and confidence intervals for the difference.
 */
import { normalCdf, normalPpf, normalSf, tPpf, tSf } from './distributions.js';

export interface SampleSizeOptions {
  /** Baseline conversion rate p1, in (0, 1). */
  baseline: number;
  /** Minimum detectable effect: relative lift (0.2 = +20%) unless `relative` is false (absolute points). */
  mde: number;
  relative?: boolean;
  alpha?: number;
  power?: number;
  alternative?: 'two-sided' | 'one-sided';
}

export interface SampleSize {
  /** Observations needed in each group, rounded up. */
  perGroup: number;
  /** The unrounded solution. */
  exact: number;
  p1: number;
  p2: number;
}

function targetRates(o: SampleSizeOptions): { p1: number; p2: number } {
  const p1 = o.baseline;
  const p2 = (o.relative ?? true) ? p1 * (1 + o.mde) : p1 + o.mde;
  if (!(p1 > 0 && p1 < 1)) throw new RangeError(`baseline must be in (0, 1), got ${p1}`);
  if (!(p2 > 0 && p2 < 1)) throw new RangeError(`the target rate ${p2} (baseline with the effect) must be in (0, 1)`);
  if (p1 === p2) throw new RangeError('the minimum detectable effect must not be zero');
  return { p1, p2 };
}

function criticalValues(o: SampleSizeOptions): { zAlpha: number; zBeta: number } {
  const alpha = o.alpha ?? 0.05;
  const power = o.power ?? 0.8;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (!(power > 0 && power < 1)) throw new RangeError(`power must be in (0, 1), got ${power}`);
  const twoSided = (o.alternative ?? 'two-sided') === 'two-sided';
  return { zAlpha: normalPpf(1 - (twoSided ? alpha / 2 : alpha)), zBeta: normalPpf(power) };
}

/**
 * Per-group size for a two-proportion test with the pooled variance under H0 and the unpooled one
 * under H1 (Fleiss):
 *   n = (z_{1-α/2}·√(2·p̄(1-p̄)) + z_{1-β}·√(p1(1-p1) + p2(1-p2)))² / (p2 - p1)²,  p̄ = (p1+p2)/2.
 * For a 3% baseline and a 20% relative lift at α = 0.05 two-sided and power 0.8: 13,914.
 */
export function sampleSizeTwoProportions(options: SampleSizeOptions): SampleSize {
  const { p1, p2 } = targetRates(options);
  const { zAlpha, zBeta } = criticalValues(options);
  const pBar = (p1 + p2) / 2;
  const exact = ((zAlpha * Math.sqrt(2 * pBar * (1 - pBar)) + zBeta * Math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) / (p2 - p1)) ** 2;
  return { perGroup: Math.ceil(exact), exact, p1, p2 };
}

/** Cohen's h between two proportions: 2·asin(√p1) - 2·asin(√p2) (statsmodels' proportion_effectsize). */
export function cohenH(p1: number, p2: number): number {
  return 2 * Math.asin(Math.sqrt(p1)) - 2 * Math.asin(Math.sqrt(p2));
}

/** Power of a two-sample z-test with standardised effect d, nobs1 in the first group and ratio·nobs1 in the second. */
export function normalIndPower(effect: number, nobs1: number, alpha: number, ratio = 1, alternative: 'two-sided' | 'larger' | 'smaller' = 'two-sided'): number {
  const nobs = 1 / (1 / nobs1 + 1 / (nobs1 * ratio));
  const crit = normalPpf(1 - (alternative === 'two-sided' ? alpha / 2 : alpha));
  const shift = effect * Math.sqrt(nobs);
  let power = 0;
  if (alternative !== 'smaller') power += normalSf(crit - shift);
  if (alternative !== 'larger') power += normalCdf(-crit - shift);
  return power;
}

/**
 * The nobs1 at which normalIndPower reaches `power` (statsmodels NormalIndPower().solve_power with
 * an effect size from proportion_effectsize). Solved by bisection to full double precision.
 */
export function solveNormalIndSampleSize(effect: number, alpha = 0.05, power = 0.8, ratio = 1, alternative: 'two-sided' | 'larger' | 'smaller' = 'two-sided'): number {
  if (effect === 0) throw new RangeError('the effect size must not be zero');
  const f = (n: number): number => normalIndPower(effect, n, alpha, ratio, alternative) - power;
  let lo = 1e-6;
  let hi = 2;
  while (f(hi) < 0) {
    hi *= 2;
    if (hi > 1e15) throw new RangeError('the required sample size is unbounded for this effect');
  }
  for (let i = 0; i < 200 && hi - lo > 0; i++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (f(mid) < 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Per-group size in the Cohen's h form: h from the two rates, then solveNormalIndSampleSize. */
export function sampleSizeCohenH(options: SampleSizeOptions): SampleSize {
  const { p1, p2 } = targetRates(options);
  const exact = solveNormalIndSampleSize(cohenH(p2, p1), options.alpha ?? 0.05, options.power ?? 0.8, 1, options.alternative === 'one-sided' ? 'larger' : 'two-sided');
  return { perGroup: Math.ceil(exact), exact, p1, p2 };
}

/** The guide's floor: at least two weeks, so weekly patterns are covered. */
export const MIN_EXPERIMENT_DAYS = 14;

/**
 * Days an experiment must run: max(ceil(perGroup·groups / dailyTraffic), 14), where dailyTraffic
 * is the number of requests a day entering the experiment (all groups together).
 */
export function minimumDurationDays(perGroup: number, dailyTraffic: number, groups = 2, minDays = MIN_EXPERIMENT_DAYS): number {
  if (!(dailyTraffic > 0)) throw new RangeError(`daily traffic must be positive, got ${dailyTraffic}`);
  return Math.max(Math.ceil((perGroup * groups) / dailyTraffic), minDays);
}

export interface Interval {
  lower: number;
  upper: number;
  level: number;
}

export interface TwoProportionResult {
  /** p1 - p2. */
  difference: number;
  z: number;
  pValue: number;
  p1: number;
  p2: number;
  /** Wald interval for p1 - p2 (unpooled variance). */
  interval: Interval;
}

/**
 * Two-proportion z-test with the pooled variance (statsmodels proportions_ztest) and the Wald
 * interval for the difference (statsmodels confint_proportions_2indep, method 'wald').
 */
export function twoProportionZTest(successes1: number, n1: number, successes2: number, n2: number, options: { alpha?: number } = {}): TwoProportionResult {
  for (const [label, value] of [['n1', n1], ['n2', n2]] as const) if (!(value > 0)) throw new RangeError(`${label} must be positive`);
  if (successes1 < 0 || successes1 > n1 || successes2 < 0 || successes2 > n2) throw new RangeError('successes must be between 0 and the group size');
  const alpha = options.alpha ?? 0.05;
  const p1 = successes1 / n1;
  const p2 = successes2 / n2;
  const pooled = (successes1 + successes2) / (n1 + n2);
  const difference = p1 - p2;
  const z = difference / Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const pValue = 2 * normalSf(Math.abs(z));
  const halfWidth = normalPpf(1 - alpha / 2) * Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  return { difference, z, pValue, p1, p2, interval: { lower: difference - halfWidth, upper: difference + halfWidth, level: 1 - alpha } };
}

export interface SummaryStats {
  n: number;
  mean: number;
  /** Sample variance (n - 1 denominator). */
  variance: number;
}

export function summarize(values: ArrayLike<number>): SummaryStats {
  const n = values.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i]!;
  mean /= n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i]! - mean) ** 2;
  return { n, mean, variance: n > 1 ? squares / (n - 1) : Number.NaN };
}

export interface WelchResult {
  /** mean1 - mean2. */
  difference: number;
  t: number;
  df: number;
  pValue: number;
  interval: Interval;
}

/** Welch's t-test from summaries (scipy.stats.ttest_ind(equal_var=False)), with its t interval for the difference. */
export function welchTTestFromStats(a: SummaryStats, b: SummaryStats, options: { alpha?: number } = {}): WelchResult {
  if (a.n < 2 || b.n < 2) throw new RangeError("Welch's t-test needs at least two values in each group");
  const alpha = options.alpha ?? 0.05;
  const va = a.variance / a.n;
  const vb = b.variance / b.n;
  const se = Math.sqrt(va + vb);
  const difference = a.mean - b.mean;
  const t = difference / se;
  const df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1));
  const pValue = 2 * tSf(Math.abs(t), df);
  const halfWidth = tPpf(1 - alpha / 2, df) * se;
  return { difference, t, df, pValue, interval: { lower: difference - halfWidth, upper: difference + halfWidth, level: 1 - alpha } };
}

export function welchTTest(a: ArrayLike<number>, b: ArrayLike<number>, options: { alpha?: number } = {}): WelchResult {
  return welchTTestFromStats(summarize(a), summarize(b), options);
}
