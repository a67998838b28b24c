/**
 * Drift of current data against a reference profile, per column and for the data set.
 *
 * Method per column, Evidently's defaults unless overridden, with n = distinct values over both
 * samples:
 *   reference ≤ 1,000 rows: numeric with n > 5 → KS (p < 0.05); else chi-square (p < 0.05), or a
 *                           two-proportion z-test (p < 0.05) when n ≤ 2;
 *   reference > 1,000 rows: numeric with n > 5 → Wasserstein normalised by the reference std
 *                           (≥ 0.1); else Jensen-Shannon distance (≥ 0.1).
 * PSI (quantile bins of the reference, see src/stats/psi.ts) is computed for every column as a
 * magnitude for the severity tiers, and is also a method of its own (≥ 0.1).
 * Data-set drift: the share of drifted input columns ≥ the threshold (default 0.5). p-value
 * methods can be corrected for multiple testing (Bonferroni or Benjamini-Hochberg) first.
 */
import { InvalidInputError } from '../core/errors.js';
import { chiSquareGoodnessOfFit } from '../stats/chisquare.js';
import { jensenShannon, wasserstein1, WASSERSTEIN_MIN_NORM } from '../stats/distance.js';
import { normalSf } from '../stats/distributions.js';
import { ks2samp } from '../stats/ks.js';
import { correctPValues, type Correction } from '../stats/multiple-testing.js';
import { binCounts, psiFromCounts } from '../stats/psi.js';
import type { Column, Table } from './dataset.js';
import { decide, type Decision, type SeverityPolicy, type Severity, severityFromPsi, DEFAULT_POLICY } from './decision.js';
import { CATEGORICAL_MAX_DISTINCT, type ColumnProfile, type ColumnRole, type DriftProfile, type FeatureKind } from './profile.js';

export const DRIFT_METHODS = ['ks', 'wasserstein', 'psi', 'chisquare', 'jensenshannon', 'z'] as const;
export type DriftMethod = (typeof DRIFT_METHODS)[number];

/** Methods whose score is a p-value (drift when below the threshold); the others are distances (drift at or above). */
export const P_VALUE_METHODS: ReadonlySet<DriftMethod> = new Set(['ks', 'chisquare', 'z']);

export const DEFAULT_THRESHOLDS: Readonly<Record<DriftMethod, number>> = {
  ks: 0.05,
  chisquare: 0.05,
  z: 0.05,
  wasserstein: 0.1,
  jensenshannon: 0.1,
  psi: 0.1,
};

/** Reference size up to which Evidently uses the tests (KS, chi-square, z) rather than distances. */
export const SMALL_REFERENCE_ROWS = 1000;

export interface DriftOptions {
  /** One method for every column (instead of the default rule). */
  method?: DriftMethod;
  /** Method per column name; wins over `method`. */
  methods?: Record<string, DriftMethod>;
  /** Threshold per method. */
  thresholds?: Partial<Record<DriftMethod, number>>;
  /** Threshold per column name; wins over the method's. */
  columnThresholds?: Record<string, number>;
  /** Share of drifted input columns at which the data set counts as drifted. */
  datasetThreshold?: number;
  correction?: Correction;
  /** Only these columns (default: every profiled column the current data has). */
  columns?: readonly string[];
  policy?: SeverityPolicy;
  /** Observed drop in accuracy (0.03 = 3 points), when labels are known. */
  accuracyDrop?: number;
  /** Bins of the charts in the report. */
  chartBins?: number;
}

export type Chart =
  | { kind: 'histogram'; edges: number[]; reference: number[]; current: number[] }
  | { kind: 'bars'; categories: string[]; reference: number[]; current: number[] };

export interface ColumnDrift {
  name: string;
  role: ColumnRole;
  kind: FeatureKind;
  method: DriftMethod;
  /** The method's value: a p-value for ks/chisquare/z, a distance otherwise. */
  score: number;
  /** KS statistic, chi-square statistic or z for the test methods. */
  statistic: number | null;
  pValue: number | null;
  /** After multiple-testing correction (equal to pValue without one). */
  adjustedPValue: number | null;
  threshold: number;
  drifted: boolean;
  psi: number;
  severity: Severity;
  referenceRows: number;
  currentRows: number;
  currentMissing: number;
  chart: Chart;
}

export interface DriftReport {
  format: 'inferd.drift-report/1';
  createdAt: string;
  referenceRows: number;
  currentRows: number;
  columns: ColumnDrift[];
  dataset: { drifted: boolean; driftedColumns: string[]; share: number; threshold: number; inputs: number; correction: Correction };
  decision: Decision;
}

interface Prepared {
  profile: ColumnProfile;
  numeric?: Float64Array;
  strings?: string[];
  missing: number;
}

function prepare(profile: ColumnProfile, column: Column): Prepared {
  if (column.kind === 'numeric') {
    const present: number[] = [];
    for (const v of column.values) if (!Number.isNaN(v)) present.push(v);
    if (profile.valueType === 'string') return { profile, strings: present.map(String), missing: column.values.length - present.length };
    return { profile, numeric: Float64Array.from(present).sort(), missing: column.values.length - present.length };
  }
  const present = column.values.filter((v): v is string => v !== null);
  if (profile.valueType === 'numeric') {
    throw new InvalidInputError(`column '${profile.name}' is numeric in the reference but holds text in the current data (e.g. '${present.find((v) => !Number.isFinite(Number(v))) ?? present[0]}')`);
  }
  return { profile, strings: present, missing: column.values.length - present.length };
}

/**
 * The category key of a current number: its decimal form, or the reference category it equals
 * at float32 precision (live FP32 tensors carry 0.1 as 0.10000000149011612).
 */
function numericKey(p: Prepared): (v: number) => string {
  const categories = p.profile.categories;
  if (!categories) return String;
  const byFloat32 = new Map<number, string>();
  for (const key of Object.keys(categories)) byFloat32.set(Math.fround(Number(key)), key);
  return (v) => {
    const key = String(v);
    if (key in categories) return key;
    return byFloat32.get(Math.fround(v)) ?? key;
  };
}

/** Current values as category counts (string keys). */
function currentCategories(p: Prepared): Map<string, number> {
  const counts = new Map<string, number>();
  if (p.strings) for (const v of p.strings) counts.set(v, (counts.get(v) ?? 0) + 1);
  else {
    const keyOf = numericKey(p);
    for (const v of p.numeric!) {
      const key = keyOf(v);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** Distinct values over both samples, counted up to CATEGORICAL_MAX_DISTINCT + 1. */
function pooledDistinct(p: Prepared): number {
  const limit = CATEGORICAL_MAX_DISTINCT + 1;
  if (p.profile.distinct >= limit) return limit;
  const seen = new Set(Object.keys(p.profile.categories ?? {}));
  if (p.strings) for (const v of p.strings) {
    seen.add(v);
    if (seen.size >= limit) break;
  }
  else {
    const keyOf = numericKey(p);
    for (const v of p.numeric!) {
      seen.add(keyOf(v));
      if (seen.size >= limit) break;
    }
  }
  return Math.min(seen.size, limit);
}

export function defaultMethod(referenceRows: number, numeric: boolean, distinct: number): DriftMethod {
  const continuous = numeric && distinct > CATEGORICAL_MAX_DISTINCT;
  if (referenceRows <= SMALL_REFERENCE_ROWS) return continuous ? 'ks' : distinct > 2 ? 'chisquare' : 'z';
  return continuous ? 'wasserstein' : 'jensenshannon';
}

/** Reference and current counts over the same category keys (union, reference order first). */
function alignedCategories(p: Prepared): { keys: string[]; reference: number[]; current: number[] } {
  const ref = p.profile.categories;
  if (!ref) throw new InvalidInputError(`column '${p.profile.name}' has too many distinct values in the reference for a categorical method; use ks, wasserstein or psi`);
  const cur = currentCategories(p);
  const keys = [...new Set([...Object.keys(ref).filter((k) => ref[k]! > 0), ...cur.keys()])];
  return { keys, reference: keys.map((k) => ref[k] ?? 0), current: keys.map((k) => cur.get(k) ?? 0) };
}

function psiOf(p: Prepared): number {
  if (p.numeric && p.profile.numeric) {
    return psiFromCounts(p.profile.numeric.counts, binCounts(p.profile.numeric.edges, p.numeric));
  }
  const { reference, current } = alignedCategories(p);
  return psiFromCounts(reference, current);
}

function chartOf(p: Prepared, bins: number): Chart {
  if (p.numeric && p.profile.numeric && (p.profile.kind === 'continuous' || !p.profile.categories)) {
    const sample = p.profile.numeric.sample;
    let min = Math.min(p.profile.numeric.min, p.numeric[0] ?? Infinity);
    let max = Math.max(p.profile.numeric.max, p.numeric[p.numeric.length - 1] ?? -Infinity);
    if (min === max) {
      min -= 0.5;
      max += 0.5;
    }
    const interior = Array.from({ length: bins - 1 }, (_, i) => min + ((max - min) * (i + 1)) / bins);
    const share = (counts: number[], total: number): number[] => counts.map((c) => (total > 0 ? c / total : 0));
    return {
      kind: 'histogram',
      edges: [min, ...interior, max],
      reference: share(binCounts(interior, sample), sample.length),
      current: share(binCounts(interior, p.numeric), p.numeric.length),
    };
  }
  const { keys, reference, current } = alignedCategories(p);
  const total = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) || 1;
  const rt = total(reference);
  const ct = total(current);
  return { kind: 'bars', categories: keys, reference: reference.map((c) => c / rt), current: current.map((c) => c / ct) };
}

interface Scored {
  score: number;
  statistic: number | null;
  pValue: number | null;
}

function score(p: Prepared, method: DriftMethod): Scored {
  const name = p.profile.name;
  const current = p.numeric;
  switch (method) {
    case 'ks': {
      if (!current || !p.profile.numeric) throw new InvalidInputError(`column '${name}' holds text: KS needs numbers`);
      const r = ks2samp(p.profile.numeric.sample, current, { sorted: true });
      return { score: r.pValue, statistic: r.statistic, pValue: r.pValue };
    }
    case 'wasserstein': {
      if (!current || !p.profile.numeric) throw new InvalidInputError(`column '${name}' holds text: Wasserstein needs numbers`);
      // the sample is the whole reference up to the reservoir size; the std is always the whole reference's
      const d = wasserstein1(p.profile.numeric.sample, current, { sorted: true }) / Math.max(p.profile.numeric.std, WASSERSTEIN_MIN_NORM);
      return { score: d, statistic: null, pValue: null };
    }
    case 'psi':
      return { score: psiOf(p), statistic: null, pValue: null };
    case 'jensenshannon': {
      if (p.numeric && p.profile.numeric && !p.profile.categories) {
        const d = jensenShannon(p.profile.numeric.counts, binCounts(p.profile.numeric.edges, p.numeric));
        return { score: d, statistic: null, pValue: null };
      }
      const { reference, current: cur } = alignedCategories(p);
      return { score: jensenShannon(reference, cur), statistic: null, pValue: null };
    }
    case 'chisquare': {
      let reference: number[];
      let cur: number[];
      if (p.numeric && p.profile.numeric && !p.profile.categories) {
        reference = p.profile.numeric.counts;
        cur = binCounts(p.profile.numeric.edges, p.numeric);
      } else {
        ({ reference, current: cur } = alignedCategories(p));
      }
      const refTotal = reference.reduce((a, b) => a + b, 0);
      const curTotal = cur.reduce((a, b) => a + b, 0);
      const keep = reference.map((r, i) => r > 0 || cur[i]! > 0);
      const expected = reference.map((r) => (r * curTotal) / refTotal).filter((_, i) => keep[i]);
      const observed = cur.filter((_, i) => keep[i]);
      if (observed.length < 2) return { score: 1, statistic: 0, pValue: 1 };
      const r = chiSquareGoodnessOfFit(observed, expected);
      return { score: r.pValue, statistic: r.statistic, pValue: r.pValue };
    }
    case 'z': {
      const { keys, reference, current: cur } = alignedCategories(p);
      const n1 = reference.reduce((a, b) => a + b, 0);
      const n2 = cur.reduce((a, b) => a + b, 0);
      if (keys.length <= 1) return { score: 1, statistic: 0, pValue: 1 };
      const p1 = reference[0]! / n1;
      const p2 = cur[0]! / n2;
      const pooled = (reference[0]! + cur[0]!) / (n1 + n2);
      const z = (p1 - p2) / Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
      const pValue = 2 * normalSf(Math.abs(z));
      return { score: pValue, statistic: z, pValue };
    }
  }
}

/** Computes the drift of `current` against `reference`. Pure and synchronous: run it off the event loop (see pool.ts). */
export function computeDrift(reference: DriftProfile, current: Table, options: DriftOptions = {}, onProgress?: (done: number, total: number) => void): DriftReport {
  const byName = new Map(current.columns.map((c) => [c.name, c]));
  const wanted = options.columns ? new Set(options.columns) : undefined;
  if (wanted) {
    for (const name of wanted) if (!reference.columns.some((c) => c.name === name)) throw new InvalidInputError(`column '${name}' is not in the reference profile`);
  }
  for (const [name, method] of Object.entries(options.methods ?? {})) {
    if (!(DRIFT_METHODS as readonly string[]).includes(method)) throw new InvalidInputError(`unknown drift method '${method}' for column '${name}' (use ${DRIFT_METHODS.join(', ')})`);
  }
  const profiles = reference.columns.filter((c) => (wanted ? wanted.has(c.name) : byName.has(c.name)));
  if (profiles.length === 0) throw new InvalidInputError(`the current data has none of the reference columns (${reference.columns.slice(0, 6).map((c) => c.name).join(', ')}...)`);
  const missingColumns = profiles.filter((c) => !byName.has(c.name)).map((c) => c.name);
  if (missingColumns.length > 0) throw new InvalidInputError(`the current data lacks column${missingColumns.length > 1 ? 's' : ''} ${missingColumns.join(', ')}`);
  const policy = options.policy ?? DEFAULT_POLICY;
  const correction = options.correction ?? 'none';
  const bins = options.chartBins ?? 20;

  const results = profiles.map((profile, index): ColumnDrift => {
    onProgress?.(index, profiles.length);
    const p = prepare(profile, byName.get(profile.name)!);
    const currentRows = p.numeric ? p.numeric.length : p.strings!.length;
    if (currentRows === 0) throw new InvalidInputError(`column '${profile.name}' has no values in the current data`);
    const distinct = pooledDistinct(p);
    const method = options.methods?.[profile.name] ?? options.method ?? defaultMethod(reference.rows, profile.valueType === 'numeric', distinct);
    const threshold = options.columnThresholds?.[profile.name] ?? options.thresholds?.[method] ?? DEFAULT_THRESHOLDS[method];
    const s = score(p, method);
    const psiValue = psiOf(p);
    const kind: FeatureKind = profile.valueType === 'numeric' && distinct > CATEGORICAL_MAX_DISTINCT ? 'continuous' : 'categorical';
    const drifted = P_VALUE_METHODS.has(method) ? s.score < threshold : s.score >= threshold;
    return {
      name: profile.name,
      role: profile.role,
      kind,
      method,
      score: s.score,
      statistic: s.statistic,
      pValue: s.pValue,
      adjustedPValue: s.pValue,
      threshold,
      drifted,
      psi: psiValue,
      severity: severityFromPsi(psiValue, policy),
      referenceRows: profile.count,
      currentRows,
      currentMissing: p.missing,
      chart: chartOf(p, bins),
    };
  });

  onProgress?.(profiles.length, profiles.length);
  // Multiple testing: one family per role, over the columns tested with a p-value
  if (correction !== 'none') {
    for (const role of ['input', 'output'] as const) {
      const tested = results.filter((r) => r.role === role && r.pValue !== null);
      if (tested.length === 0) continue;
      const corrected = correctPValues(tested.map((r) => r.pValue!), correction);
      tested.forEach((r, i) => {
        r.adjustedPValue = corrected.adjusted[i]!;
        r.drifted = r.adjustedPValue < r.threshold;
      });
    }
  }

  const inputs = results.filter((r) => r.role === 'input');
  const drifted = inputs.filter((r) => r.drifted);
  const datasetThreshold = options.datasetThreshold ?? 0.5;
  if (!(datasetThreshold > 0 && datasetThreshold <= 1)) throw new InvalidInputError(`the data-set drift threshold must be in (0, 1], got ${datasetThreshold}`);
  const share = inputs.length > 0 ? drifted.length / inputs.length : 0;
  const dataset = { drifted: inputs.length > 0 && share >= datasetThreshold, driftedColumns: drifted.map((r) => r.name), share, threshold: datasetThreshold, inputs: inputs.length, correction };
  const currentRows = current.rows;
  return {
    format: 'inferd.drift-report/1',
    createdAt: new Date().toISOString(),
    referenceRows: reference.rows,
    currentRows,
    columns: results,
    dataset,
    decision: decide({ columns: results, dataset, currentRows, policy, ...(options.accuracyDrop !== undefined ? { accuracyDrop: options.accuracyDrop } : {}) }),
  };
}
