/**
 * The experiment analysis on the server's statistics library (src/stats, checked against scipy
 * and statsmodels in the test suite): the z-test, Welch's t-test, the chi-square test of
 * categorical outcomes, both forms of the sample size, and the mSPRT always-valid p-value that
 * makes reading a running experiment safe.
 */
import { chiSquareContingency } from '../stats/chisquare.js';
import { sampleSizeCohenH, sampleSizeTwoProportions, twoProportionZTest, welchTTestFromStats } from '../stats/experiments.js';
import { msprtLikelihoodRatio, proportionsObservation } from '../stats/sequential.js';
import type { ExperimentStatistics } from './experiment-statistics.js';

/** Effect the sequential test is most sensitive to, relative to the control's rate. */
const EXPECTED_RELATIVE_EFFECT = 0.1;

export const exactStatistics: ExperimentStatistics = {
  twoProportionZTest(control, treatment, alpha) {
    // The library reports group 1 minus group 2: treatment first, so the difference is treatment - control.
    const r = twoProportionZTest(treatment.successes, treatment.n, control.successes, control.n, { alpha });
    return { test: 'two_proportion_z', statistic: r.z, pValue: r.pValue, difference: r.difference, interval: [r.interval.lower, r.interval.upper] };
  },
  welchTTest(control, treatment, alpha) {
    const r = welchTTestFromStats(treatment, control, { alpha });
    return { test: 'welch_t', statistic: r.t, pValue: r.pValue, difference: r.difference, interval: [r.interval.lower, r.interval.upper] };
  },
  twoProportionSampleSize(baseline, mde, options) {
    return sampleSizeTwoProportions({ baseline, mde, relative: options.relative, alpha: options.alpha, power: options.power }).perGroup;
  },
  chiSquareIndependence(table) {
    // Pearson without Yates even for 2x2: its statistic is then the square of the two-proportion z
    // the report gives beside it, and the two tests agree (Yates' correction is conservative).
    const r = chiSquareContingency(table, { correction: false });
    return { statistic: r.statistic, dof: r.dof, pValue: r.pValue };
  },
  cohenHSampleSize(baseline, mde, options) {
    return sampleSizeCohenH({ baseline, mde, relative: options.relative, alpha: options.alpha, power: options.power }).exact;
  },
  sequentialTwoProportion(control, treatment) {
    const look = proportionsObservation(control.successes, control.n, treatment.successes, treatment.n);
    if (!(look.variance > 0)) return { pValue: 1 };
    const pControl = control.successes / control.n;
    const tau2 = Math.max((EXPECTED_RELATIVE_EFFECT * pControl) ** 2, 1e-6);
    // 1/Λ at this look: never below the running minimum, so it stays a valid (conservative) p-value.
    return { pValue: Math.min(1, 1 / msprtLikelihoodRatio(look, tau2)) };
  },
};
