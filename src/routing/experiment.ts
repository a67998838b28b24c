/**
 * Reading an A/B experiment: per-variant counts and rates from the feedback joined to the
 * variant that served each request, each treatment tested against the control, the sample size
 * the design needs and whether it is reached, the minimum duration, and a decision.
 *
 * The decision is deliberately conservative: nothing is declared before every variant has the
 * required sample and the minimum duration has passed (peeking at a fixed-horizon test inflates
 * false positives); then a significant difference (Bonferroni-corrected when there are several
 * treatments) names a winner, otherwise there is no difference. When the statistics provide a
 * sequential test (mSPRT), its always-valid p-value may name a better treatment earlier.
 *
 * Feedback that carries a label (a category, not a number) is tested separately: a Pearson
 * chi-square test of independence on the variants × categories table says whether the variants'
 * label distributions differ. It is reported beside the decision, which stays on the metric.
 */
import type { ExperimentConfig, SplitPolicy } from './config.js';
import type { ExperimentStatistics, TestResult } from './experiment-statistics.js';
import type { VariantOutcomes } from './store.js';

export type Decision = 'keep_running' | 'winner' | 'no_difference';

export interface VariantReport {
  variant: string;
  version: string;
  weight: number;
  served: number;
  /** Feedback outcomes received and their mean (the conversion rate for a binary metric). */
  outcomes: number;
  rate: number | null;
  /** Sample standard deviation (continuous metric). */
  stddev: number | null;
  labels: Record<string, number>;
}

export interface Comparison extends TestResult {
  control: string;
  treatment: string;
  /** The alpha each comparison is held to (alpha / number of treatments). */
  alpha: number;
  significant: boolean;
  /** Always-valid p-value (mSPRT), when the statistics provide one; null otherwise. */
  sequentialPValue: number | null;
}

export interface CategoricalTest {
  test: 'chi_square_independence';
  /** Rows of the table: the variants that received labelled feedback. */
  variants: string[];
  /** Columns: every label seen, sorted. */
  categories: string[];
  /** counts[i][j]: feedback of variants[i] labelled categories[j]. */
  counts: number[][];
  statistic: number;
  dof: number;
  pValue: number;
  /** Pearson's statistic as is, no Yates correction, 2x2 included (it is then the two-proportion z squared). */
  correction: 'none';
  /** One test over all variants: held to the experiment's alpha. */
  alpha: number;
  significant: boolean;
}

export interface ExperimentReport {
  name: string;
  model: string;
  metric: 'binary' | 'continuous';
  control: string;
  alpha: number;
  power: number;
  variants: VariantReport[];
  comparisons: Comparison[];
  /** Chi-square test of the labelled feedback; null with `categoricalNote` saying why. */
  categorical: CategoricalTest | null;
  categoricalNote: string | null;
  /** Per group, two-proportion (Fleiss) form; null when the design gives no baseline rate and effect size. */
  requiredSamplePerGroup: number | null;
  /** Per group in the Cohen's h form (statsmodels NormalIndPower with proportion_effectsize), rounded up and unrounded. */
  requiredSamplePerGroupCohenH: number | null;
  cohenHExact: number | null;
  sampleReached: boolean;
  /** max(required sample / daily traffic of the smallest group, min_days); null without daily_traffic. */
  minimumDays: number | null;
  startedAt: number | null;
  elapsedDays: number | null;
  decision: Decision;
  winner: string | null;
  reason: string;
}

/** Days needed: the slowest variant's sample at its share of the daily traffic, and at least `minDays`. */
export function minimumDurationDays(samplePerGroup: number, dailyTraffic: number, weights: readonly number[], minDays = 14): number {
  const total = weights.reduce((s, w) => s + w, 0);
  const smallest = Math.min(...weights.filter((w) => w > 0));
  const days = Math.ceil(samplePerGroup / (dailyTraffic * (smallest / total)));
  return Math.max(days, minDays);
}

/** Distinct labels a table may have; beyond it the labels are free text, not categories. */
export const MAX_CATEGORIES = 100;

/** The variants × labels table of the feedback, and its chi-square test (or why there is none). */
export function categoricalTest(variants: readonly VariantReport[], statistics: ExperimentStatistics, alpha: number): { test: CategoricalTest | null; note: string | null } {
  const rows = variants.filter((v) => Object.values(v.labels).some((n) => n > 0));
  const categories = [...new Set(rows.flatMap((v) => Object.keys(v.labels).filter((k) => v.labels[k]! > 0)))].sort();
  if (rows.length === 0) return { test: null, note: 'no labelled feedback' };
  if (statistics.chiSquareIndependence === undefined) return { test: null, note: 'these statistics have no chi-square test' };
  if (rows.length < 2) return { test: null, note: `labelled feedback from one variant only (${rows[0]!.variant})` };
  if (categories.length < 2) return { test: null, note: `every label is '${categories[0]}'` };
  if (categories.length > MAX_CATEGORIES) return { test: null, note: `${categories.length} distinct labels, more than the ${MAX_CATEGORIES} a categorical test takes` };
  const counts = rows.map((v) => categories.map((c) => v.labels[c] ?? 0));
  const r = statistics.chiSquareIndependence(counts);
  return {
    test: { test: 'chi_square_independence', variants: rows.map((v) => v.variant), categories, counts, statistic: r.statistic, dof: r.dof, pValue: r.pValue, correction: 'none', alpha, significant: r.pValue < alpha },
    note: null,
  };
}

export function analyseExperiment(
  model: string,
  policy: SplitPolicy & { experiment: ExperimentConfig },
  outcomes: readonly VariantOutcomes[],
  statistics: ExperimentStatistics,
  timing: { startedAt: number | null; now: number },
): ExperimentReport {
  const e = policy.experiment;
  const byName = new Map(outcomes.map((o) => [o.variant, o]));
  const variants: VariantReport[] = policy.variants.map((v) => {
    const o = byName.get(v.name);
    const n = o?.outcomes ?? 0;
    const mean = n > 0 ? o!.sum / n : null;
    const variance = n > 1 ? (o!.sumOfSquares - n * mean! * mean!) / (n - 1) : null;
    return {
      variant: v.name,
      version: v.version,
      weight: v.weight,
      served: o?.served ?? 0,
      outcomes: n,
      rate: mean,
      stddev: variance === null ? null : Math.sqrt(Math.max(0, variance)),
      labels: { ...(o?.labels ?? {}) },
    };
  });
  const control = variants.find((v) => v.variant === e.control)!;
  const treatments = variants.filter((v) => v.variant !== e.control);
  const alpha = e.alpha / Math.max(1, treatments.length);
  const comparisons: Comparison[] = [];
  for (const t of treatments) {
    const c = byName.get(control.variant);
    const o = byName.get(t.variant);
    if (c === undefined || o === undefined || c.outcomes < 2 || o.outcomes < 2) continue;
    let result: TestResult;
    let sequentialPValue: number | null = null;
    if (e.metric === 'binary') {
      const control = { successes: c.sum, n: c.outcomes };
      const treatment = { successes: o.sum, n: o.outcomes };
      result = statistics.twoProportionZTest(control, treatment, alpha);
      if (statistics.sequentialTwoProportion !== undefined) sequentialPValue = statistics.sequentialTwoProportion(control, treatment).pValue;
    } else {
      const moments = (x: VariantOutcomes) => {
        const mean = x.sum / x.outcomes;
        return { n: x.outcomes, mean, variance: Math.max(0, (x.sumOfSquares - x.outcomes * mean * mean) / (x.outcomes - 1)) };
      };
      result = statistics.welchTTest(moments(c), moments(o), alpha);
    }
    comparisons.push({ ...result, control: control.variant, treatment: t.variant, alpha, significant: result.pValue < alpha, sequentialPValue });
  }

  const required =
    e.metric === 'binary' && e.baselineRate !== undefined && e.mde !== undefined
      ? statistics.twoProportionSampleSize(e.baselineRate, e.mde, { relative: e.relative, alpha: e.alpha, power: e.power })
      : null;
  const cohenHExact =
    required !== null && statistics.cohenHSampleSize !== undefined ? statistics.cohenHSampleSize(e.baselineRate!, e.mde!, { relative: e.relative, alpha: e.alpha, power: e.power }) : null;
  const categorical = categoricalTest(variants, statistics, e.alpha);
  const sampleReached = required !== null && variants.every((v) => v.outcomes >= required);
  const minimumDays = required !== null && e.dailyTraffic !== undefined ? minimumDurationDays(required, e.dailyTraffic, policy.variants.map((v) => v.weight), e.minDays) : null;
  const elapsedDays = timing.startedAt === null ? null : (timing.now - timing.startedAt) / 86_400_000;
  const daysNeeded = minimumDays ?? e.minDays;

  let decision: Decision = 'keep_running';
  let winner: string | null = null;
  let reason: string;
  // An always-valid p-value may be read at any time: below alpha, the experiment can stop early.
  const early = comparisons.filter((c) => c.sequentialPValue !== null && c.sequentialPValue < alpha && c.difference > 0).sort((a, b) => b.difference - a.difference)[0];
  if (early !== undefined) {
    decision = 'winner';
    winner = early.treatment;
    reason = `${winner} beats ${control.variant} by a sequential test (always-valid p = ${round(early.sequentialPValue!)}), which may stop before the planned sample`;
  } else if (required === null) {
    reason = 'the design has no baseline_rate and mde, so no sample size; set them to get a decision';
  } else if (!sampleReached) {
    const short = variants.filter((v) => v.outcomes < required).map((v) => `${v.variant} ${v.outcomes}/${required}`);
    reason = `sample not reached: ${short.join(', ')}`;
  } else if (elapsedDays !== null && elapsedDays < daysNeeded) {
    reason = `minimum duration not reached: ${elapsedDays.toFixed(1)} of ${daysNeeded} days`;
  } else {
    const significant = comparisons.filter((c) => c.significant);
    if (significant.length === 0) {
      decision = 'no_difference';
      reason = `no treatment differs from ${control.variant} at alpha ${round(alpha)}`;
    } else {
      decision = 'winner';
      const better = significant.filter((c) => c.difference > 0).sort((a, b) => b.difference - a.difference)[0];
      winner = better?.treatment ?? control.variant;
      reason = better !== undefined ? `${winner} beats ${control.variant} (p = ${round(better.pValue)})` : `${control.variant} beats every significant treatment`;
    }
  }
  return {
    name: e.name,
    model,
    metric: e.metric,
    control: e.control,
    alpha: e.alpha,
    power: e.power,
    variants,
    comparisons,
    categorical: categorical.test,
    categoricalNote: categorical.note,
    requiredSamplePerGroup: required,
    requiredSamplePerGroupCohenH: cohenHExact === null ? null : Math.ceil(cohenHExact),
    cohenHExact,
    sampleReached,
    minimumDays,
    startedAt: timing.startedAt,
    elapsedDays,
    decision,
    winner,
    reason,
  };
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}

/**
 * Offline: per-variant outcomes from CSV text with columns variant,outcome (header row required).
 * An outcome that is a number or true/false counts as one; any other text is a label (a
 * category). An optional `label` column gives labels beside numeric outcomes.
 */
export function outcomesFromCsv(text: string): VariantOutcomes[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new RangeError('the CSV is empty');
  const header = lines[0]!.split(',').map((h) => h.trim().toLowerCase());
  const vi = header.indexOf('variant');
  const oi = header.indexOf('outcome');
  const li = header.indexOf('label');
  if (vi < 0 || (oi < 0 && li < 0)) throw new RangeError(`the CSV header must name a 'variant' column and an 'outcome' or 'label' column (found: ${header.join(', ')})`);
  const byVariant = new Map<string, VariantOutcomes>();
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(',');
    const variant = cells[vi]?.trim();
    const raw = oi < 0 ? '' : (cells[oi]?.trim() ?? '');
    const extraLabel = li < 0 ? '' : (cells[li]?.trim() ?? '');
    if (variant === undefined || variant === '' || (raw === '' && extraLabel === '')) {
      throw new RangeError(`CSV line ${i + 2}: needs a variant and an outcome or label, got '${line}'`);
    }
    const value = raw === 'true' ? 1 : raw === 'false' ? 0 : raw === '' ? Number.NaN : Number(raw);
    let o = byVariant.get(variant);
    if (o === undefined) {
      // Labels are data: a prototype-less map, so a label like '__proto__' is just a label.
      o = { variant, version: variant, served: 0, outcomes: 0, sum: 0, sumOfSquares: 0, labels: Object.create(null) as Record<string, number> };
      byVariant.set(variant, o);
    }
    o.served += 1;
    if (Number.isFinite(value)) {
      o.outcomes += 1;
      o.sum += value;
      o.sumOfSquares += value * value;
    }
    const label = extraLabel !== '' ? extraLabel : raw !== '' && !Number.isFinite(value) ? raw : '';
    if (label !== '') o.labels[label] = (o.labels[label] ?? 0) + 1;
  });
  return [...byVariant.values()];
}
