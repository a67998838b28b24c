import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable, tableFromCells, type Table } from '../../src/monitoring/dataset.js';
import { computeDrift, defaultMethod } from '../../src/monitoring/drift.js';
import { buildDriftProfile, validateDriftProfile, type DriftProfile } from '../../src/monitoring/profile.js';
import { ks2samp, normalizedWasserstein, psi } from '../../src/stats/index.js';
import { normalSample, seeded } from '../stats/support.js';
import { BC_TEST, BC_TRAIN, SHIFTS, shiftedTestCopy, tempDir } from './support.js';

describe('drift on the breast_cancer data', () => {
  let dir: string;
  let train: Table;
  let profile: DriftProfile;

  beforeAll(async () => {
    dir = await tempDir();
    train = await readTable(BC_TRAIN);
    profile = buildDriftProfile(train, { outputs: ['label'] });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('profiles every feature as continuous and the label as a categorical output, and survives JSON', () => {
    expect(profile.rows).toBe(426);
    const inputs = profile.columns.filter((c) => c.role === 'input');
    expect(inputs).toHaveLength(30);
    expect(inputs.every((c) => c.kind === 'continuous' && c.numeric!.sample.length === 426)).toBe(true);
    const label = profile.columns.find((c) => c.name === 'label')!;
    expect(label).toMatchObject({ role: 'output', kind: 'categorical' });
    expect(Object.values(label.categories!).reduce((a, b) => a + b, 0)).toBe(426);
    const radius = inputs.find((c) => c.name === 'mean_radius')!.numeric!;
    expect(radius.counts.reduce((a, b) => a + b, 0)).toBe(426);
    expect(radius.counts).toHaveLength(radius.edges.length + 1);
    expect(validateDriftProfile(JSON.parse(JSON.stringify(profile)))).toEqual(profile);
  });

  it('train vs test: no data-set drift, no column flagged, no action', async () => {
    const report = computeDrift(profile, await readTable(BC_TEST));
    expect(report.dataset.drifted).toBe(false);
    expect(report.dataset.driftedColumns).toEqual([]);
    expect(report.columns.filter((c) => c.drifted)).toEqual([]);
    expect(report.decision).toMatchObject({ severity: 'none', action: 'none', enoughData: true });
    // 426 reference rows: KS for the continuous features, a z-test for the binary label
    expect(new Set(report.columns.filter((c) => c.role === 'input').map((c) => c.method))).toEqual(new Set(['ks']));
    expect(report.columns.find((c) => c.name === 'label')!.method).toBe('z');
  });

  it('a copy of test with three features shifted flags exactly those three', async () => {
    const current = await readTable(await shiftedTestCopy(dir));
    const report = computeDrift(profile, current);
    expect(report.dataset.driftedColumns.sort()).toEqual(Object.keys(SHIFTS).sort());
    expect(report.dataset.share).toBeCloseTo(3 / 30, 12);
    expect(report.dataset.drifted).toBe(false);
    expect(report.decision.severity).toBe('severe');
    expect(report.decision.action).toBe('emergency');
    // the same with Bonferroni and with Benjamini-Hochberg over the 30 p-values
    for (const correction of ['bonferroni', 'fdr_bh'] as const) {
      expect(computeDrift(profile, current, { correction }).dataset.driftedColumns.sort()).toEqual(Object.keys(SHIFTS).sort());
    }
    // a lower data-set threshold turns three drifted columns into data-set drift
    expect(computeDrift(profile, current, { datasetThreshold: 0.1 }).dataset.drifted).toBe(true);
  });

  it('scores equal the statistics library on the same data (KS, normalised Wasserstein, PSI)', async () => {
    const test = await readTable(BC_TEST);
    const col = (t: Table, name: string): Float64Array => t.columns.find((c) => c.name === name)!.values as Float64Array;
    const report = computeDrift(profile, test, { methods: { mean_area: 'wasserstein', worst_area: 'psi' } });
    const byName = new Map(report.columns.map((c) => [c.name, c]));
    const ks = ks2samp(col(train, 'mean_radius'), col(test, 'mean_radius'));
    expect(byName.get('mean_radius')!.score).toBe(ks.pValue);
    expect(byName.get('mean_radius')!.statistic).toBe(ks.statistic);
    expect(byName.get('mean_area')!.method).toBe('wasserstein');
    expect(byName.get('mean_area')!.score).toBeCloseTo(normalizedWasserstein(col(train, 'mean_area'), col(test, 'mean_area')), 12);
    expect(byName.get('worst_area')!.score).toBeCloseTo(psi(col(train, 'worst_area'), col(test, 'worst_area')), 12);
  });
});

describe('method choice and edge cases', () => {
  const random = seeded(4242);

  it("follows Evidently's defaults by reference size and distinct values", () => {
    expect(defaultMethod(1000, true, 6)).toBe('ks');
    expect(defaultMethod(1001, true, 6)).toBe('wasserstein');
    expect(defaultMethod(500, true, 5)).toBe('chisquare');
    expect(defaultMethod(500, true, 2)).toBe('z');
    expect(defaultMethod(5000, false, 30)).toBe('jensenshannon');
    expect(defaultMethod(5000, true, 4)).toBe('jensenshannon');

    const big = tableFromCells(['x', 'colour'], normalSample(random, 3000).map((x, i) => [x, ['red', 'green', 'blue'][i % 3]!]));
    const profile = buildDriftProfile(big);
    const same = tableFromCells(['x', 'colour'], normalSample(random, 2000).map((x, i) => [x, ['red', 'green', 'blue'][i % 3]!]));
    const report = computeDrift(profile, same);
    expect(report.columns.map((c) => [c.name, c.kind, c.method, c.drifted])).toEqual([
      ['x', 'continuous', 'wasserstein', false],
      ['colour', 'categorical', 'jensenshannon', false],
    ]);
  });

  it('handles a constant column, a new category and an empty one', () => {
    const rows = Array.from({ length: 400 }, (_, i) => [7, ['a', 'b', 'c'][i % 3]!] as [number, string]);
    const profile = buildDriftProfile(tableFromCells(['constant', 'cat'], rows));
    expect(profile.columns[0]!.kind).toBe('categorical');
    const steady = computeDrift(profile, tableFromCells(['constant', 'cat'], rows.slice(0, 300)));
    expect(steady.columns.map((c) => c.drifted)).toEqual([false, false]);
    expect(steady.columns.map((c) => c.method)).toEqual(['z', 'chisquare']);
    // 'c' disappears, 'd' appears
    const moved = tableFromCells(['constant', 'cat'], Array.from({ length: 300 }, (_, i) => [7, ['a', 'b', 'd'][i % 3]!]));
    const report = computeDrift(profile, moved);
    expect(report.columns[1]).toMatchObject({ name: 'cat', method: 'chisquare', drifted: true, pValue: 0 });
    expect(report.columns[1]!.chart).toMatchObject({ kind: 'bars', categories: ['a', 'b', 'c', 'd'] });
    expect(computeDrift(profile, moved, { methods: { cat: 'jensenshannon' } }).columns[1]!.drifted).toBe(true);
  });

  it('matches float32 values from live tensors to the reference categories', () => {
    const levels = [0.1, 0.2, 0.7];
    const profile = buildDriftProfile(tableFromCells(['level'], Array.from({ length: 300 }, (_, i) => [levels[i % 3]!])));
    const live = tableFromCells(['level'], Array.from({ length: 300 }, (_, i) => [Math.fround(levels[i % 3]!)]));
    const report = computeDrift(profile, live);
    expect(report.columns[0]).toMatchObject({ kind: 'categorical', method: 'chisquare', drifted: false, pValue: 1 });
    expect((report.columns[0]!.chart as { categories: string[] }).categories).toEqual(['0.1', '0.2', '0.7']);
  });

  it('names the problem when the current data does not fit', () => {
    const profile = buildDriftProfile(tableFromCells(['x'], normalSample(random, 50).map((x) => [x])));
    expect(() => computeDrift(profile, tableFromCells(['y'], [[1]]))).toThrow(/none of the reference columns/);
    expect(() => computeDrift(profile, tableFromCells(['x'], [['text']]))).toThrow(/numeric in the reference but holds text/);
    expect(() => computeDrift(profile, tableFromCells(['x'], [[1]]), { methods: { x: 'nope' as 'ks' } })).toThrow(/unknown drift method 'nope'/);
    expect(() => buildDriftProfile(tableFromCells(['x'], [[1]]), { outputs: ['label'] })).toThrow(/no column 'label'/);
  });

  it('holds back a decision below the minimum number of rows', () => {
    const profile = buildDriftProfile(tableFromCells(['x'], normalSample(random, 500).map((x) => [x])));
    const report = computeDrift(profile, tableFromCells(['x'], normalSample(random, 20, 5).map((x) => [x])));
    expect(report.columns[0]!.drifted).toBe(true);
    expect(report.decision).toMatchObject({ enoughData: false, action: 'none', key: 'insufficient-data' });
  });

  it('raises the severity from an accuracy drop reported with the labels', () => {
    const profile = buildDriftProfile(tableFromCells(['x'], normalSample(random, 500).map((x) => [x])));
    const current = tableFromCells(['x'], normalSample(random, 400).map((x) => [x]));
    expect(computeDrift(profile, current).decision.severity).toBe('none');
    expect(computeDrift(profile, current, { accuracyDrop: 0.03 }).decision).toMatchObject({ severity: 'moderate', action: 'review' });
    expect(computeDrift(profile, current, { accuracyDrop: 0.08 }).decision).toMatchObject({ severity: 'severe', action: 'emergency' });
  });
});

describe('stored profiles', () => {
  it('rejects a profile whose sample is not sorted or whose bins do not match', async () => {
    const profile = buildDriftProfile(await readTable(BC_TRAIN), { exclude: ['label'] });
    const copy = JSON.parse(JSON.stringify(profile)) as DriftProfile;
    copy.columns[0]!.numeric!.sample.reverse();
    expect(() => validateDriftProfile(copy)).toThrow(/'mean_radius' needs a sorted sample/);
    const bins = JSON.parse(JSON.stringify(profile)) as DriftProfile;
    bins.columns[1]!.numeric!.counts.pop();
    expect(() => validateDriftProfile(bins)).toThrow(/'mean_texture' has 9 counts for \d+ edges/);
    expect(() => validateDriftProfile({ ...profile, format: 'x' })).toThrow(/unknown format 'x'/);
  });
});
