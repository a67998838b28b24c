import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferdError } from '../../src/core/errors.js';
import {
  checkRanges,
  computeProfile,
  describeViolations,
  histogramBin,
  parseCsv,
  profileFromCsv,
  validateProfile,
  type InputProfile,
} from '../../src/validation/ranges.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const data = path.resolve(repoRoot, '..', 'shared', 'models');
const TRAIN = path.join(data, 'breast_cancer', 'data', 'train.csv');
const TEST = path.join(data, 'breast_cancer', 'data', 'test.csv');
const DIGITS_TRAIN = path.join(data, 'digits', 'data', 'train.csv');

/** Rows of a CSV with a header, as numbers, without the named columns. */
async function readRows(file: string, drop: string[]): Promise<{ names: string[]; rows: number[][] }> {
  const lines = (await readFile(file, 'utf8')).trim().split('\n');
  const header = lines[0]!.split(',');
  const keep = header.map((h, i) => [h, i] as const).filter(([h]) => !drop.includes(h));
  return {
    names: keep.map(([h]) => h),
    rows: lines.slice(1).map((line) => {
      const cells = line.split(',');
      return keep.map(([, i]) => Number(cells[i]));
    }),
  };
}

function thrown(fn: () => unknown): InferdError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InferdError);
    return error as InferdError;
  }
  throw new Error('expected an error');
}

describe('input profiles from the breast cancer training data', () => {
  let profile: InputProfile;
  let train: { names: string[]; rows: number[][] };

  beforeAll(async () => {
    profile = await profileFromCsv(TRAIN, { exclude: ['label'] });
    train = await readRows(TRAIN, ['label']);
  });

  it('has one feature per column, in order, without the label', async () => {
    const manifest = JSON.parse(await readFile(path.join(data, 'manifest.json'), 'utf8')) as { breast_cancer: { features: string[] } };
    expect(profile.features.map((f) => f.name)).toEqual(manifest.breast_cancer.features);
    expect(profile.features.map((f) => f.index)).toEqual([...Array(30).keys()]);
    expect(profile.rows).toBe(426);
    expect(profile.excluded).toEqual(['label']);
    expect(profile.source).toEqual({ file: 'train.csv', sha256: createHash('sha256').update(await readFile(TRAIN)).digest('hex') });
    expect(validateProfile(JSON.parse(JSON.stringify(profile)))).toEqual(profile);
  });

  it('computes min, max, mean, std and percentiles as an independent calculation does', () => {
    profile.features.forEach((feature, f) => {
      const values = train.rows.map((r) => r[f]!).sort((a, b) => a - b);
      const n = values.length;
      const mean = values.reduce((a, b) => a + b, 0) / n;
      const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
      const at = (q: number) => {
        const pos = q * (n - 1);
        const lo = Math.floor(pos);
        return values[lo]! + (values[Math.min(lo + 1, n - 1)]! - values[lo]!) * (pos - lo);
      };
      expect(feature.count).toBe(426);
      expect(feature.missing).toBe(0);
      expect(feature.min).toBe(values[0]);
      expect(feature.max).toBe(values[n - 1]);
      expect(feature.mean).toBeCloseTo(mean, 10);
      expect(feature.std).toBeCloseTo(std, 10);
      expect(feature.p01).toBeCloseTo(at(0.01), 12);
      expect(feature.p99).toBeCloseTo(at(0.99), 12);
      expect(feature.min).toBeLessThanOrEqual(feature.p01);
      expect(feature.p01).toBeLessThan(feature.p99);
      expect(feature.p99).toBeLessThanOrEqual(feature.max);
      expect(feature.edges).toHaveLength(11);
      expect(feature.edges[0]).toBe(feature.min);
      expect(feature.edges[10]).toBe(feature.max);
      for (let i = 1; i < 11; i++) expect(feature.edges[i]!).toBeGreaterThanOrEqual(feature.edges[i - 1]!);
      expect(feature.fractions.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      // Quantile bins hold about a tenth each on continuous data.
      for (const share of feature.fractions) expect(share).toBeLessThan(0.2);
    });
  });

  it('passes every training row, as float32 and as float64', () => {
    const flat = train.rows.flat();
    expect(checkRanges(Float32Array.from(flat), [426, 30], profile, 'minmax')).toEqual([]);
    expect(checkRanges(Float64Array.from(flat), [426, 30], profile, 'minmax')).toEqual([]);
    // Percentile mode cuts the extreme 1% at each end: some training values fall outside.
    const outside = checkRanges(Float64Array.from(flat), [426, 30], profile, 'percentile');
    expect(outside.length).toBeGreaterThan(30);
    expect(outside.length).toBeLessThan(426 * 30 * 0.05);
    for (const v of outside) expect(v.value < profile.features[v.index]!.p01 || v.value > profile.features[v.index]!.p99).toBe(true);
  });

  it('lists every offending feature with its row, index, value and range', () => {
    const rows = train.rows.slice(0, 3).map((r) => [...r]);
    rows[0]![3] = 1e6; // mean_area far above the reference
    rows[2]![0] = -1; // mean_radius below
    rows[2]![29] = Number.NaN;
    const violations = checkRanges(Float32Array.from(rows.flat()), [3, 30], profile, 'minmax');
    expect(violations.map((v) => [v.row, v.index, v.feature])).toEqual([
      [0, 3, 'mean_area'],
      [2, 0, 'mean_radius'],
      [2, 29, 'worst_fractal_dimension'],
    ]);
    expect(violations[0]).toMatchObject({ value: 1e6, min: Math.fround(profile.features[3]!.min), max: Math.fround(profile.features[3]!.max) });
    expect(Number.isNaN(violations[2]!.value)).toBe(true);
    expect(describeViolations(violations)).toContain('mean_area (row 0, index 3) = 1000000 outside');
    // One unbatched row.
    expect(checkRanges(Float64Array.from(rows[2]!), [30], profile, 'minmax').map((v) => v.index)).toEqual([0, 29]);
  });

  it('finds the held-out data mostly but not entirely inside the training range', async () => {
    const test = await readRows(TEST, ['label']);
    const violations = checkRanges(Float32Array.from(test.rows.flat()), [test.rows.length, 30], profile, 'minmax');
    expect(violations.length).toBeLessThan(test.rows.length * 30 * 0.02);
    for (const v of violations) {
      const f = profile.features[v.index]!;
      expect(v.value < Math.fround(f.min) || v.value > Math.fround(f.max)).toBe(true);
    }
  });

  it('refuses shapes that do not match the profile', () => {
    expect(thrown(() => checkRanges(new Float32Array(29), [1, 29], profile, 'minmax')).message).toContain('30 features');
    expect(thrown(() => checkRanges(new Float32Array(30), [2, 30], profile, 'minmax')).message).toContain('needs 60 values');
    expect(thrown(() => checkRanges(new Float32Array(30), [-1, 30], profile, 'minmax')).code).toBe('INVALID_ARGUMENT');
    expect(thrown(() => checkRanges(new Float32Array(1), [], profile, 'minmax')).code).toBe('INVALID_ARGUMENT');
  });
});

describe('input profiles of images', () => {
  it('treats the values after the batch axis as the features', async () => {
    const profile = await profileFromCsv(DIGITS_TRAIN, { exclude: ['label'] });
    expect(profile.features).toHaveLength(64);
    expect(profile.features[0]!.name).toBe('p0');
    const image = new Float32Array(2 * 64).fill(0);
    expect(checkRanges(image, [2, 1, 8, 8], profile, 'minmax')).toEqual([]);
    image[64 + 9] = 2; // pixels are scaled to 0..1
    expect(checkRanges(image, [2, 1, 8, 8], profile, 'minmax')).toEqual([
      { row: 1, index: 9, feature: 'p9', value: 2, min: 0, max: Math.fround(profile.features[9]!.max) },
    ]);
    // Corner pixels are always 0 in these digits: the histogram edges collapse, all in one bin.
    expect(profile.features[0]!.edges.every((e) => e === 0)).toBe(true);
    expect(profile.features[0]!.fractions).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });
});

describe('CSV handling', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-ranges-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('parses quoted fields, doubled quotes and CRLF', () => {
    expect(parseCsv('"a,b",c\r\n"say ""hi""",2\r\n\n')).toEqual([
      ['a,b', 'c'],
      ['say "hi"', '2'],
    ]);
    expect(() => parseCsv('"open')).toThrow('quoted field');
  });

  it('counts empty cells and NaN as missing', async () => {
    const file = path.join(dir, 'gaps.csv');
    await writeFile(file, 'x,y\n1,\n2,NaN\n3,5\n');
    const profile = await profileFromCsv(file);
    expect(profile.features[0]).toMatchObject({ count: 3, missing: 0, min: 1, max: 3, mean: 2 });
    expect(profile.features[1]).toMatchObject({ count: 1, missing: 2, min: 5, max: 5, std: 0 });
  });

  it('reports bad cells, ragged rows, unknown exclusions and duplicate names with their place', async () => {
    const cases: Array<[string, string, string[], string]> = [
      ['word.csv', 'x,y\n1,2\n3,abc\n', [], "line 3 column 'y': 'abc' is not a number"],
      ['ragged.csv', 'x,y\n1,2\n3\n', [], 'line 3 has 1 fields, the header has 2'],
      ['exclude.csv', 'x,y\n1,2\n', ['label'], "has no column 'label'"],
      ['dup.csv', 'x,x\n1,2\n', [], "two columns named 'x'"],
      ['empty.csv', '', [], 'is empty'],
      ['header.csv', 'x,y\n', [], 'no rows'],
      ['all.csv', 'x\n1\n', ['x'], 'no feature columns'],
    ];
    for (const [name, text, exclude, message] of cases) {
      const file = path.join(dir, name);
      await writeFile(file, text);
      await expect(profileFromCsv(file, { exclude }), name).rejects.toThrow(message);
    }
    await expect(profileFromCsv(path.join(dir, 'absent.csv'))).rejects.toThrow('cannot read reference data');
  });
});

describe('profile helpers', () => {
  it('bins values over quantile edges, clamping outside values', () => {
    const edges = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(histogramBin(edges, -5)).toBe(0);
    expect(histogramBin(edges, 0.5)).toBe(0);
    expect(histogramBin(edges, 1)).toBe(1);
    expect(histogramBin(edges, 9.99)).toBe(9);
    expect(histogramBin(edges, 10)).toBe(9);
    expect(histogramBin(edges, 99)).toBe(9);
  });

  it('computes a profile from arrays and validates stored ones', () => {
    const profile = computeProfile([{ name: 'a', values: [1, 2, 3, 4] }]);
    expect(profile.features[0]).toMatchObject({ min: 1, max: 4, mean: 2.5 });
    expect(profile.features[0]!.p01).toBeCloseTo(1.03, 12);
    expect(profile.features[0]!.p99).toBeCloseTo(3.97, 12);
    expect(() => computeProfile([])).toThrow('at least one feature');
    expect(() => computeProfile([{ name: 'a', values: [Number.NaN] }])).toThrow('no values');
    expect(() => validateProfile({ ...profile, format: 'other' })).toThrow('unknown format');
    expect(() => validateProfile({ ...profile, features: [{ ...profile.features[0]!, max: -1 }] })).toThrow('min above max');
    expect(() => validateProfile({ ...profile, features: [{ ...profile.features[0]!, edges: [1] }] })).toThrow('histogram edges');
    expect(() => validateProfile(null)).toThrow('expected an object');
  });
});
