/**
 * Reference profiles for drift: what the drift tests need to know about a model version's
 * training data, in a JSON-serialisable form stored in the registry with the version (inside
 * the input profile, see src/validation/ranges.ts).
 *
 * Per column (inputs, and outputs such as a predicted label, a confidence or a regression value):
 *   - value type (numeric or string) and the Evidently-style kind: categorical when the column
 *     holds strings or at most 5 distinct numbers, continuous otherwise (the drift computation
 *     re-decides on the distinct values of both samples, as Evidently does);
 *   - count, missing values, distinct values (exact up to DISTINCT_CAP);
 *   - numeric columns: min, max, mean, std (population), quantiles, 10 quantile bins (interior
 *     edges with repeats removed, see src/stats/psi.ts) with the count of reference values in
 *     each, and a reservoir sample (all values when there are at most `reservoirSize`) for
 *     KS and Wasserstein;
 *   - category counts for string columns and for numeric ones with at most CATEGORY_CAP values.
 */
import { InvalidInputError } from '../core/errors.js';
import { binCounts, quantileEdges, quantileSorted } from '../stats/psi.js';
import type { Column, Table } from './dataset.js';

export const DRIFT_PROFILE_FORMAT = 'inferd.drift-profile/1';
export const DEFAULT_RESERVOIR = 5000;
export const PROFILE_BINS = 10;
/** Numeric columns with at most this many distinct values count as categorical (Evidently's rule). */
export const CATEGORICAL_MAX_DISTINCT = 5;
/** Category counts are kept for numeric columns with at most this many distinct values. */
export const CATEGORY_CAP = 50;
/** Distinct values are counted exactly up to this many. */
export const DISTINCT_CAP = 10000;

export type ColumnRole = 'input' | 'output';
export type FeatureKind = 'continuous' | 'categorical';

export interface NumericSummary {
  min: number;
  max: number;
  mean: number;
  std: number;
  quantiles: { p01: number; p05: number; p25: number; p50: number; p75: number; p95: number; p99: number };
  /** Interior edges of the reference's quantile bins (repeats removed): edges.length + 1 bins. */
  edges: number[];
  /** Reference values per bin. */
  counts: number[];
  /** Uniform sample of the reference values, sorted (all of them when few). */
  sample: number[];
}

export interface ColumnProfile {
  name: string;
  role: ColumnRole;
  valueType: 'numeric' | 'string';
  kind: FeatureKind;
  count: number;
  missing: number;
  /** Distinct present values; DISTINCT_CAP + 1 means "more than DISTINCT_CAP". */
  distinct: number;
  numeric?: NumericSummary;
  /** Count per category (string form of the value). */
  categories?: Record<string, number>;
}

export interface DriftProfile {
  format: typeof DRIFT_PROFILE_FORMAT;
  rows: number;
  reservoirSize: number;
  columns: ColumnProfile[];
  createdAt: string;
}

export interface ProfileOptions {
  /** Columns profiled as model outputs (a predicted label, a score); the rest are inputs. */
  outputs?: readonly string[];
  /** Columns left out entirely (ids, the true label). */
  exclude?: readonly string[];
  reservoirSize?: number;
  /** Seed of the reservoir sampling, so a profile is reproducible. */
  seed?: number;
}

/** Small deterministic generator for reservoir sampling. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Algorithm R: a uniform sample of `size` values out of `values`. */
export function reservoirSample(values: ArrayLike<number>, size: number, random: () => number): Float64Array {
  if (values.length <= size) return Float64Array.from(values);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) out[i] = values[i]!;
  for (let i = size; i < values.length; i++) {
    const j = Math.floor(random() * (i + 1));
    if (j < size) out[j] = values[i]!;
  }
  return out;
}

function countCategories(values: Iterable<string>, cap: number): Map<string, number> | undefined {
  const counts = new Map<string, number>();
  for (const v of values) {
    counts.set(v, (counts.get(v) ?? 0) + 1);
    if (counts.size > cap) return undefined;
  }
  return counts;
}

/** Profiles one column of values. */
export function profileColumn(column: Column, role: ColumnRole, reservoirSize: number, random: () => number): ColumnProfile {
  if (column.kind === 'string') {
    const present = column.values.filter((v): v is string => v !== null);
    const counts = countCategories(present, Infinity)!;
    return {
      name: column.name,
      role,
      valueType: 'string',
      kind: 'categorical',
      count: present.length,
      missing: column.values.length - present.length,
      distinct: counts.size,
      categories: Object.fromEntries(counts),
    };
  }
  const present: number[] = [];
  for (const v of column.values) if (!Number.isNaN(v)) present.push(v);
  if (present.length === 0) throw new InvalidInputError(`column '${column.name}' has no values in the reference data`);
  const sorted = Float64Array.from(present).sort();
  let distinct = 1;
  for (let i = 1; i < sorted.length && distinct <= DISTINCT_CAP; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
  let sum = 0;
  for (const v of sorted) sum += v;
  const mean = sum / sorted.length;
  let squares = 0;
  for (const v of sorted) squares += (v - mean) ** 2;
  const edges = quantileEdges(sorted, PROFILE_BINS);
  const q = (p: number): number => quantileSorted(sorted, p);
  const categories = distinct <= CATEGORY_CAP ? countCategories(present.map(String), CATEGORY_CAP) : undefined;
  return {
    name: column.name,
    role,
    valueType: 'numeric',
    kind: distinct <= CATEGORICAL_MAX_DISTINCT ? 'categorical' : 'continuous',
    count: sorted.length,
    missing: column.values.length - sorted.length,
    distinct: Math.min(distinct, DISTINCT_CAP + 1),
    numeric: {
      min: sorted[0]!,
      max: sorted[sorted.length - 1]!,
      mean,
      std: Math.sqrt(squares / sorted.length),
      quantiles: { p01: q(0.01), p05: q(0.05), p25: q(0.25), p50: q(0.5), p75: q(0.75), p95: q(0.95), p99: q(0.99) },
      edges,
      counts: binCounts(edges, sorted),
      sample: Array.from(reservoirSample(present, reservoirSize, random).sort()),
    },
    ...(categories ? { categories: Object.fromEntries(categories) } : {}),
  };
}

/** Profiles every column of a table (minus `exclude`), the `outputs` ones as outputs. */
export function buildDriftProfile(table: Table, options: ProfileOptions = {}): DriftProfile {
  const names = new Set(table.columns.map((c) => c.name));
  for (const name of [...(options.outputs ?? []), ...(options.exclude ?? [])]) {
    if (!names.has(name)) throw new InvalidInputError(`the data has no column '${name}' (columns: ${[...names].slice(0, 8).join(', ')}${names.size > 8 ? ', ...' : ''})`);
  }
  if (table.rows === 0) throw new InvalidInputError('the reference data has no rows');
  const reservoirSize = options.reservoirSize ?? DEFAULT_RESERVOIR;
  if (!(Number.isSafeInteger(reservoirSize) && reservoirSize > 0)) throw new InvalidInputError(`reservoir size must be a positive integer, got ${reservoirSize}`);
  const random = seededRandom(options.seed ?? 0x5eed);
  const outputs = new Set(options.outputs ?? []);
  const exclude = new Set(options.exclude ?? []);
  const columns = table.columns
    .filter((c) => !exclude.has(c.name))
    .map((c) => profileColumn(c, outputs.has(c.name) ? 'output' : 'input', reservoirSize, random));
  return { format: DRIFT_PROFILE_FORMAT, rows: table.rows, reservoirSize, columns, createdAt: new Date().toISOString() };
}

/** Checks a drift profile that came from outside (the registry, a file). */
export function validateDriftProfile(value: unknown): DriftProfile {
  const invalid = (why: string): never => {
    throw new InvalidInputError(`not a drift profile: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return invalid('expected an object');
  const p = value as Record<string, unknown>;
  if (p['format'] !== DRIFT_PROFILE_FORMAT) invalid(`unknown format '${String(p['format'])}'`);
  if (!Number.isSafeInteger(p['rows'])) invalid('rows must be an integer');
  if (!Array.isArray(p['columns']) || p['columns'].length === 0) invalid('columns must be a non-empty list');
  for (const [i, c] of (p['columns'] as unknown[]).entries()) {
    if (typeof c !== 'object' || c === null) invalid(`column ${i} is not an object`);
    const col = c as Record<string, unknown>;
    if (typeof col['name'] !== 'string') invalid(`column ${i} has no name`);
    if (col['role'] !== 'input' && col['role'] !== 'output') invalid(`column '${String(col['name'])}' has role '${String(col['role'])}'`);
    if (col['valueType'] === 'numeric') {
      const n = col['numeric'] as Record<string, unknown> | undefined;
      if (typeof n !== 'object' || n === null || !Array.isArray(n['edges']) || !Array.isArray(n['counts']) || !Array.isArray(n['sample'])) {
        invalid(`numeric column '${String(col['name'])}' needs edges, counts and a sample`);
      }
      if ((n!['counts'] as unknown[]).length !== (n!['edges'] as unknown[]).length + 1) invalid(`column '${String(col['name'])}' has ${(n!['counts'] as unknown[]).length} counts for ${(n!['edges'] as unknown[]).length} edges`);
      const sample = n!['sample'] as unknown[];
      if (sample.length === 0) invalid(`column '${String(col['name'])}' has an empty sample`);
      for (let k = 0; k < sample.length; k++) {
        if (typeof sample[k] !== 'number' || !Number.isFinite(sample[k]) || (k > 0 && (sample[k] as number) < (sample[k - 1] as number))) {
          invalid(`column '${String(col['name'])}' needs a sorted sample of finite numbers`);
        }
      }
      if (!Number.isFinite(n!['std'])) invalid(`column '${String(col['name'])}' has no finite std`);
    } else if (col['valueType'] === 'string') {
      if (typeof col['categories'] !== 'object' || col['categories'] === null) invalid(`string column '${String(col['name'])}' needs category counts`);
    } else {
      invalid(`column '${String(col['name'])}' has value type '${String(col['valueType'])}'`);
    }
  }
  return value as DriftProfile;
}
