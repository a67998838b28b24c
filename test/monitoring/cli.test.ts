import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriftReport } from '../../src/monitoring/drift.js';
import type { InputProfile } from '../../src/validation/ranges.js';
import { BC_MODEL, BC_TEST, BC_TRAIN, SHIFTS, runInferd, shiftedTestCopy, tempDir } from './support.js';

describe('inferd drift and inferd models profile', () => {
  let dir: string;
  let shifted: string;
  let registry: string;

  beforeAll(async () => {
    dir = await tempDir();
    shifted = await shiftedTestCopy(dir);
    registry = `sqlite:${path.join(dir, 'registry.db')}`;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prints a table for train vs test and exits 0', async () => {
    const r = await runInferd(['drift', '--reference', BC_TRAIN, '--current', BC_TEST, '--output', 'label']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^COLUMN\s+ROLE\s+KIND\s+METHOD\s+SCORE\s+P-VALUE\s+THRESHOLD\s+PSI\s+SEVERITY\s+DRIFT/);
    expect(r.stdout).toMatch(/mean_radius\s+input\s+continuous\s+ks\s/);
    expect(r.stdout).toContain('no data-set drift: 0 of 30 input columns drifted');
    expect(r.stdout.split('\n').slice(1).filter((line) => line.endsWith('DRIFT'))).toEqual([]);
  });

  it('reports JSON for the shifted copy, and --fail-on-drift exits 3 on data-set drift', async () => {
    const r = await runInferd(['drift', '--reference', BC_TRAIN, '--current', shifted, '--exclude', 'label', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as DriftReport;
    expect(report.dataset.driftedColumns.sort()).toEqual(Object.keys(SHIFTS).sort());
    expect(report.columns).toHaveLength(30);
    const strict = await runInferd(['drift', '--reference', BC_TRAIN, '--current', shifted, '--exclude', 'label', '--dataset-threshold', '0.1', '--fail-on-drift']);
    expect(strict.code).toBe(3);
    expect(strict.stdout).toContain('DATA-SET DRIFT: 3 of 30 input columns drifted');
    expect(strict.stderr).toContain('data-set drift detected');
  });

  it('reads JSONL and applies method overrides', async () => {
    const lines = (await readFile(BC_TEST, 'utf8')).trim().split('\n');
    const header = lines[0]!.split(',');
    const jsonl = path.join(dir, 'test.jsonl');
    await writeFile(jsonl, lines.slice(1).map((l) => JSON.stringify(Object.fromEntries(l.split(',').map((v, i) => [header[i]!, Number(v)])))).join('\n') + '\n');
    const r = await runInferd(['drift', '--reference', BC_TRAIN, '--current', jsonl, '--output', 'label', '--method', 'psi', '--column-method', 'mean_area=wasserstein', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as DriftReport;
    expect(report.columns.find((c) => c.name === 'mean_area')!.method).toBe('wasserstein');
    expect(report.columns.find((c) => c.name === 'mean_radius')!.method).toBe('psi');
  });

  it('fires --exec once on a decision that calls for an action, and not on a stable one', async () => {
    const log = path.join(dir, 'fired.log');
    const command = `cat >> '${log}'; echo >> '${log}'`;
    const stable = await runInferd(['drift', '--reference', BC_TRAIN, '--current', BC_TEST, '--output', 'label', '--exec', command]);
    expect(stable.code).toBe(0);
    await expect(readFile(log, 'utf8')).rejects.toThrow(/ENOENT/);
    const moved = await runInferd(['drift', '--reference', BC_TRAIN, '--current', shifted, '--output', 'label', '--exec', command]);
    expect(moved.code).toBe(0);
    expect(moved.stdout).toMatch(/command cat >> .*: ok after 1 attempt/);
    const events = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { decision: { severity: string } });
    expect(events.map((e) => e.decision.severity)).toEqual(['severe']);
  });

  it('names bad input with status 2', async () => {
    const missing = await runInferd(['drift', '--reference', BC_TRAIN, '--current', path.join(dir, 'nope.csv')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.csv/);
    const method = await runInferd(['drift', '--reference', BC_TRAIN, '--current', BC_TEST, '--method', 'magic']);
    expect(method.code).not.toBe(0);
    expect(method.stderr).toContain("'magic' is not a drift method");
    const none = await runInferd(['drift', '--current', BC_TEST]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give --reference <file>, or --model NAME@VERSION');
  });

  it('stores ranges and the drift profile with NAME@VERSION --data, then drifts against the stored profile', async () => {
    expect((await runInferd(['models', 'register', 'bc', BC_MODEL, '--registry', registry])).code).toBe(0);
    const stored = await runInferd(['models', 'profile', 'bc@1', '--data', BC_TRAIN, '--output', 'label', '--registry', registry]);
    expect(stored.stderr).toBe('');
    expect(stored.code).toBe(0);
    expect(stored.stdout).toContain('stored an input profile of 30 features (426 rows) with bc version 1');
    expect(stored.stdout).toContain('drift profile: 30 inputs, outputs label; 1 categorical');
    const shown = JSON.parse((await runInferd(['models', 'show', 'bc@1', '--json', '--registry', registry])).stdout) as { profile: InputProfile };
    expect(shown.profile.features).toHaveLength(30);
    expect(shown.profile.drift!.columns).toHaveLength(31);
    // the positional form keeps working
    expect((await runInferd(['models', 'profile', 'bc', '1', BC_TRAIN, '--exclude', 'label', '--registry', registry])).code).toBe(0);
    await runInferd(['models', 'profile', 'bc@1', '--data', BC_TRAIN, '--output', 'label', '--registry', registry]);

    const r = await runInferd(['drift', '--model', 'bc@1', '--current', shifted, '--registry', registry, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as DriftReport;
    expect(report.dataset.driftedColumns.sort()).toEqual(Object.keys(SHIFTS).sort());
    expect(report.referenceRows).toBe(426);
  });

  it('--score runs the model over the data and profiles its outputs (class and confidence, label)', async () => {
    const stored = await runInferd(['models', 'profile', 'bc@1', '--data', BC_TRAIN, '--exclude', 'label', '--score', '--registry', registry, '--json']);
    expect(stored.stderr).toBe('');
    expect(stored.code).toBe(0);
    const profile = JSON.parse(stored.stdout) as InputProfile;
    expect(profile.features).toHaveLength(30);
    const outputs = profile.drift!.columns.filter((c) => c.role === 'output');
    expect(outputs.map((c) => c.name)).toEqual(['probabilities.class', 'probabilities.confidence', 'label']);
    // the model's predicted labels agree with its argmax, and it is confident on most training rows
    expect(outputs[0]!.categories).toEqual(outputs[2]!.categories);
    expect(outputs[1]!.kind).toBe('continuous');
    expect(outputs[1]!.numeric!.quantiles.p50).toBeGreaterThan(0.9);
    const labels = outputs[2]!.categories!;
    expect((labels['0'] ?? 0) + (labels['1'] ?? 0)).toBe(426);
  });
});
