/**
 * Input profiles: per-feature value ranges measured on a reference data set (usually the
 * training data), stored with a model version, and a pure check the server runs on a request's
 * values before they reach the batcher.
 *
 * Features are the elements of one row: for a tensor of shape [batch, d1, d2...] a row is the
 * d1*d2*... values after the batch axis, in row-major order (so an 8x8 image is 64 features).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import { validateDriftProfile, type DriftProfile } from '../monitoring/profile.js';

export const HISTOGRAM_BINS = 10;

export interface FeatureProfile {
  name: string;
  index: number;
  /** Values seen (missing ones excluded). */
  count: number;
  missing: number;
  min: number;
  max: number;
  /** 1st and 99th percentiles, linear interpolation between order statistics. */
  p01: number;
  p99: number;
  mean: number;
  /** Population standard deviation. */
  std: number;
  /** HISTOGRAM_BINS + 1 quantile edges (0%, 10%, ... 100%) of the reference values. */
  edges: number[];
  /** Share of reference values in each bin, with the binning of histogramBin. */
  fractions: number[];
}

export interface InputProfile {
  format: 'inferd.input-profile/1';
  rows: number;
  features: FeatureProfile[];
  /** Columns of the reference left out (labels, ids). */
  excluded: string[];
  source?: { file: string; sha256: string };
  createdAt: string;
  /** Distributions of the same reference data for drift detection (src/monitoring/profile.ts). */
  drift?: DriftProfile;
}

export type RangeMode = 'minmax' | 'percentile';

export interface Violation {
  /** Row within the request (0 for an unbatched tensor). */
  row: number;
  /** Feature position within the row. */
  index: number;
  feature: string;
  value: number;
  min: number;
  max: number;
}

/**
 * Bin of `value` over quantile edges: the number of interior edges not above it. Repeated edges
 * (many equal reference values) simply leave some bins empty; values outside the reference
 * range fall into the first or last bin.
 */
export function histogramBin(edges: readonly number[], value: number): number {
  let bin = 0;
  for (let i = 1; i < edges.length - 1; i++) if (value >= edges[i]!) bin = i;
  return bin;
}

/** Quantile by linear interpolation between order statistics (numpy's default). */
function quantile(sorted: Float64Array, q: number): number {
  const position = q * (sorted.length - 1);
  const lower = Math.floor(position);
  const upper = Math.min(lower + 1, sorted.length - 1);
  const fraction = position - lower;
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * fraction;
}

/** Profiles named columns of reference values; NaN counts as missing. */
export function computeProfile(columns: Array<{ name: string; values: ArrayLike<number> }>, excluded: string[] = []): InputProfile {
  if (columns.length === 0) throw new InvalidInputError('a profile needs at least one feature');
  const rows = columns[0]!.values.length;
  const features = columns.map(({ name, values }, index): FeatureProfile => {
    if (values.length !== rows) throw new InvalidInputError(`feature '${name}' has ${values.length} values, expected ${rows}`);
    const present: number[] = [];
    for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) present.push(values[i]!);
    if (present.length === 0) throw new InvalidInputError(`feature '${name}' has no values in the reference data`);
    const sorted = Float64Array.from(present).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    const mean = sum / sorted.length;
    let squares = 0;
    for (const v of sorted) squares += (v - mean) ** 2;
    const edges = Array.from({ length: HISTOGRAM_BINS + 1 }, (_, i) => quantile(sorted, i / HISTOGRAM_BINS));
    const counts = new Array<number>(HISTOGRAM_BINS).fill(0);
    for (const v of sorted) counts[histogramBin(edges, v)]!++;
    return {
      name,
      index,
      count: sorted.length,
      missing: rows - sorted.length,
      min: sorted[0]!,
      max: sorted[sorted.length - 1]!,
      p01: quantile(sorted, 0.01),
      p99: quantile(sorted, 0.99),
      mean,
      std: Math.sqrt(squares / sorted.length),
      edges,
      fractions: counts.map((c) => c / sorted.length),
    };
  });
  return { format: 'inferd.input-profile/1', rows, features, excluded, createdAt: new Date().toISOString() };
}

/** Splits CSV text into records (RFC 4180: quoted fields, doubled quotes, CRLF or LF). */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  while (i < body.length) {
    const c = body[i]!;
    if (quoted) {
      if (c === '"') {
        if (body[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += c;
      }
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      record.push(field);
      field = '';
      if (!(record.length === 1 && record[0] === '')) records.push(record);
      record = [];
      if (c === '\r' && body[i + 1] === '\n') i++;
    } else {
      field += c;
    }
    i++;
  }
  if (quoted) throw new InvalidInputError('the CSV ends inside a quoted field');
  record.push(field);
  if (!(record.length === 1 && record[0] === '')) records.push(record);
  return records;
}

/**
 * Profiles a reference CSV: a header row of feature names, then one row per example. Columns
 * named in `exclude` (a label, an id) are left out. Empty cells and NaN are missing values.
 */
export async function profileFromCsv(file: string, options: { exclude?: string[] } = {}): Promise<InputProfile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new InvalidInputError(`cannot read reference data ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const records = parseCsv(bytes.toString('utf8'));
  const header = records[0];
  if (header === undefined) throw new InvalidInputError(`${file} is empty`);
  const names = header.map((h) => h.trim());
  const exclude = options.exclude ?? [];
  for (const name of exclude) {
    if (!names.includes(name)) throw new InvalidInputError(`${file} has no column '${name}' to exclude (columns: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''})`);
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (name === '') throw new InvalidInputError(`${file} has a column without a name`);
    if (seen.has(name)) throw new InvalidInputError(`${file} has two columns named '${name}'`);
    seen.add(name);
  }
  const kept = names.map((name, column) => ({ name, column })).filter(({ name }) => !exclude.includes(name));
  if (kept.length === 0) throw new InvalidInputError(`${file} has no feature columns left after excluding ${exclude.join(', ')}`);
  const rows = records.length - 1;
  if (rows === 0) throw new InvalidInputError(`${file} has a header but no rows`);
  const columns = kept.map(({ name }) => ({ name, values: new Float64Array(rows) }));
  for (let r = 0; r < rows; r++) {
    const record = records[r + 1]!;
    if (record.length !== names.length) {
      throw new InvalidInputError(`${file} line ${r + 2} has ${record.length} fields, the header has ${names.length}`);
    }
    kept.forEach(({ name, column }, k) => {
      const cell = record[column]!.trim();
      let value = Number.NaN;
      if (cell !== '' && cell.toLowerCase() !== 'nan') {
        value = Number(cell);
        if (!Number.isFinite(value)) throw new InvalidInputError(`${file} line ${r + 2} column '${name}': '${cell}' is not a number`);
      }
      columns[k]!.values[r] = value;
    });
  }
  const profile = computeProfile(columns, exclude);
  profile.source = { file: path.basename(file), sha256: createHash('sha256').update(bytes).digest('hex') };
  return profile;
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Checks a profile that came from outside (a file, an API call) before it is stored or used. */
export function validateProfile(value: unknown): InputProfile {
  const invalid = (why: string): never => {
    throw new InvalidInputError(`not an input profile: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return invalid('expected an object');
  const p = value as Record<string, unknown>;
  if (p['format'] !== 'inferd.input-profile/1') invalid(`unknown format '${String(p['format'])}'`);
  if (!Array.isArray(p['features']) || p['features'].length === 0) invalid('features must be a non-empty list');
  (p['features'] as unknown[]).forEach((f, i) => {
    if (typeof f !== 'object' || f === null) invalid(`feature ${i} is not an object`);
    const feature = f as Record<string, unknown>;
    if (typeof feature['name'] !== 'string') invalid(`feature ${i} has no name`);
    if (feature['index'] !== i) invalid(`feature ${i} has index ${String(feature['index'])}`);
    for (const key of ['min', 'max', 'p01', 'p99', 'mean', 'std'] as const) {
      if (!isNumber(feature[key])) invalid(`feature '${String(feature['name'])}' has no finite ${key}`);
    }
    if ((feature['min'] as number) > (feature['max'] as number)) invalid(`feature '${String(feature['name'])}' has min above max`);
    const edges = feature['edges'];
    if (!Array.isArray(edges) || edges.length !== HISTOGRAM_BINS + 1 || !edges.every(isNumber)) {
      invalid(`feature '${String(feature['name'])}' needs ${HISTOGRAM_BINS + 1} histogram edges`);
    }
  });
  if (!Number.isSafeInteger(p['rows'])) invalid('rows must be an integer');
  if (!Array.isArray(p['excluded'])) invalid('excluded must be a list');
  if (p['drift'] !== undefined) validateDriftProfile(p['drift']);
  return value as InputProfile;
}

/** Number of features per row for a request shape, per the rule in the header comment. */
function rowLayout(shape: readonly number[], features: number): { rows: number; width: number } {
  if (shape.length === 0) throw new InvalidInputError('a scalar cannot be checked against a feature profile');
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InvalidInputError(`shape [${shape.join(', ')}] is not concrete`);
  const width = shape.length === 1 ? shape[0]! : shape.slice(1).reduce((a, b) => a * b, 1);
  const rows = shape.length === 1 ? 1 : shape[0]!;
  if (width !== features) {
    throw new InvalidInputError(`shape [${shape.join(', ')}] has ${width} values per row, the input profile has ${features} features`);
  }
  return { rows, width };
}

/**
 * Every value outside its feature's allowed range: [min, max] in 'minmax' mode, [p01, p99] in
 * 'percentile' mode. NaN is always a violation. An empty list means the values pass.
 */
export function checkRanges(values: Float32Array | Float64Array, shape: readonly number[], profile: InputProfile, mode: RangeMode): Violation[] {
  const features = profile.features;
  const { rows, width } = rowLayout(shape, features.length);
  if (values.length !== rows * width) {
    throw new InvalidInputError(`shape [${shape.join(', ')}] needs ${rows * width} values, got ${values.length}`);
  }
  // A float32 value read from the same decimal as the reference rounds to the nearest float32,
  // possibly just outside the float64 bound; round the bounds the same way (rounding is monotonic).
  const round = values instanceof Float32Array ? Math.fround : (x: number) => x;
  const lows = new Float64Array(width);
  const highs = new Float64Array(width);
  for (let f = 0; f < width; f++) {
    const feature = features[f]!;
    lows[f] = round(mode === 'minmax' ? feature.min : feature.p01);
    highs[f] = round(mode === 'minmax' ? feature.max : feature.p99);
  }
  const violations: Violation[] = [];
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    for (let f = 0; f < width; f++) {
      const value = values[base + f]!;
      // Written as a negation so that NaN fails.
      if (!(value >= lows[f]! && value <= highs[f]!)) {
        violations.push({ row: r, index: f, feature: features[f]!.name, value, min: lows[f]!, max: highs[f]! });
      }
    }
  }
  return violations;
}

/** One line per violation, for an error message. */
export function describeViolations(violations: readonly Violation[], limit = 5): string {
  const shown = violations.slice(0, limit).map((v) => `${v.feature} (row ${v.row}, index ${v.index}) = ${v.value} outside [${v.min}, ${v.max}]`);
  const more = violations.length > limit ? `; and ${violations.length - limit} more` : '';
  return shown.join('; ') + more;
}
