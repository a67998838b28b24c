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

export interface ExperimentReport {
  name: string;
  model: string;
  metric: 'binary' | 'continuous';
  control: string;
  alpha: number;
  power: number;
  variants: VariantReport[];
  comparisons: Comparison[];
  /** Per group; null when the design gives no baseline rate and effect size. */
  requiredSamplePerGroup: number | null;
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
    requiredSamplePerGroup: required,
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

/** Offline: per-variant outcomes from CSV text with columns variant,outcome (header row required). */
export function outcomesFromCsv(text: string): VariantOutcomes[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new RangeError('the CSV is empty');
  const header = lines[0]!.split(',').map((h) => h.trim().toLowerCase());
  const vi = header.indexOf('variant');
  const oi = header.indexOf('outcome');
  if (vi < 0 || oi < 0) throw new RangeError(`the CSV header must name 'variant' and 'outcome' columns (found: ${header.join(', ')})`);
  const byVariant = new Map<string, VariantOutcomes>();
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(',');
    const variant = cells[vi]?.trim();
    const raw = cells[oi]?.trim();
    const value = raw === 'true' ? 1 : raw === 'false' ? 0 : Number(raw);
    if (variant === undefined || variant === '' || raw === undefined || raw === '' || !Number.isFinite(value)) {
      throw new RangeError(`CSV line ${i + 2}: needs a variant and a numeric outcome, got '${line}'`);
    }
    let o = byVariant.get(variant);
    if (o === undefined) {
      o = { variant, version: variant, served: 0, outcomes: 0, sum: 0, sumOfSquares: 0, labels: {} };
      byVariant.set(variant, o);
    }
    o.served += 1;
    o.outcomes += 1;
    o.sum += value;
    o.sumOfSquares += value * value;
  });
  return [...byVariant.values()];
}
