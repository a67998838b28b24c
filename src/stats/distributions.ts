/**
 * The probability distributions the tests need, from @stdlib (which matches scipy's special
 * functions to about 1e-14). Upper tails are computed directly, never as 1 - cdf, so tiny
 * p-values keep their relative precision.
 */
import gammainc from '@stdlib/math-base-special-gammainc';
import gammaln from '@stdlib/math-base-special-gammaln';
import normalCdfStd from '@stdlib/stats-base-dists-normal-cdf';
import normalQuantileStd from '@stdlib/stats-base-dists-normal-quantile';
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';

/** Standard normal CDF Φ(z). */
export function normalCdf(z: number): number {
  return normalCdfStd(z, 0, 1);
}

/** Standard normal upper tail 1 - Φ(z), computed as Φ(-z). */
export function normalSf(z: number): number {
  return normalCdfStd(-z, 0, 1);
}

/** Standard normal quantile Φ⁻¹(p). */
export function normalPpf(p: number): number {
  return normalQuantileStd(p, 0, 1);
}

/** Student's t upper tail P(T > t) with `df` (possibly fractional) degrees of freedom. */
export function tSf(t: number, df: number): number {
  return tCdf(-t, df);
}

/** Student's t CDF. */
export function tCdfAt(t: number, df: number): number {
  return tCdf(t, df);
}

/** Chi-square upper tail P(X > x) with `df` degrees of freedom (the regularised upper gamma). */
export function chi2Sf(x: number, df: number): number {
  if (x <= 0) return 1;
  if (x === Infinity) return 0;
  return gammainc(x / 2, df / 2, true, true);
}

/** log Γ(x). */
export function logGamma(x: number): number {
  return gammaln(x);
}

/** Student's t quantile. */
export function tPpf(p: number, df: number): number {
  return tQuantile(p, df);
}
