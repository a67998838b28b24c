import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { getAnalysis } from '../../src/routing/admin.js';
import { ManualClock } from '../../src/routing/clock.js';
import { parseTrafficConfig, type ExperimentConfig, type SplitPolicy } from '../../src/routing/config.js';
import { configuredTrafficPolicies } from '../../src/routing/configured.js';
import { analyseExperiment, minimumDurationDays, outcomesFromCsv } from '../../src/routing/experiment.js';
import { basicStatistics, twoProportionSampleSize } from '../../src/routing/experiment-statistics.js';
import { TrafficService } from '../../src/routing/service.js';
import type { VariantOutcomes } from '../../src/routing/store.js';

describe('sample size', () => {
  it("gives 13,914 per group for a 3% baseline and a 20% relative lift (not the guide's ~6,500)", () => {
    expect(twoProportionSampleSize(0.03, 0.2, { relative: true })).toBe(13_914);
  });

  it('reads an absolute effect and grows with power and shrinking alpha', () => {
    expect(twoProportionSampleSize(0.03, 0.006, { relative: false })).toBe(13_914);
    expect(twoProportionSampleSize(0.03, 0.2, { power: 0.9 })).toBeGreaterThan(13_914);
    expect(twoProportionSampleSize(0.03, 0.2, { alpha: 0.01 })).toBeGreaterThan(13_914);
    // 10% → 15%: the textbook 686 per group (Fleiss without continuity correction).
    expect(twoProportionSampleSize(0.1, 0.05, { relative: false })).toBe(686);
  });

  it('refuses impossible designs', () => {
    expect(() => twoProportionSampleSize(0, 0.2)).toThrow(/baseline rate 0 is not in \(0, 1\)/);
    expect(() => twoProportionSampleSize(0.6, 1)).toThrow(/not below 1/);
    expect(() => twoProportionSampleSize(0.1, -1)).toThrow(/must be > 0/);
  });

  it('takes the minimum duration as max(sample / daily traffic of the smallest group, 14 days)', () => {
    expect(minimumDurationDays(13_914, 1000, [50, 50])).toBe(28);
    expect(minimumDurationDays(13_914, 100_000, [50, 50])).toBe(14);
    expect(minimumDurationDays(1000, 1000, [90, 10], 0)).toBe(10);
  });
});

function outcomes(variant: string, n: number, successes: number): VariantOutcomes {
  return { variant, version: variant, served: n, outcomes: n, sum: successes, sumOfSquares: successes, labels: {} };
}

function design(experiment: Record<string, unknown>): SplitPolicy & { experiment: ExperimentConfig } {
  const p = parseTrafficConfig(
    { split: { variants: [{ name: 'a', version: 1, weight: 50 }, { name: 'b', version: 2, weight: 50 }], experiment: { baseline_rate: 0.1, mde: 0.05, relative: false, ...experiment } } },
    'm',
  );
  return p.routing as SplitPolicy & { experiment: ExperimentConfig };
}

describe('experiment decision', () => {
  const now = { startedAt: 0, now: 30 * 86_400_000 };

  it('keeps running until every variant has the required sample', () => {
    const r = analyseExperiment('m', design({}), [outcomes('a', 500, 50), outcomes('b', 500, 90)], basicStatistics, now);
    expect(r).toMatchObject({ requiredSamplePerGroup: 686, sampleReached: false, decision: 'keep_running' });
    expect(r.reason).toMatch(/a 500\/686, b 500\/686/);
    // The test is still shown while it runs.
    expect(r.comparisons[0]!.pValue).toBeLessThan(0.01);
  });

  it('keeps running until the minimum duration, then names the winner', () => {
    const data = [outcomes('a', 700, 70), outcomes('b', 700, 120)];
    const early = analyseExperiment('m', design({}), data, basicStatistics, { startedAt: 0, now: 3 * 86_400_000 });
    expect(early.decision).toBe('keep_running');
    expect(early.reason).toMatch(/3\.0 of 14 days/);
    const late = analyseExperiment('m', design({}), data, basicStatistics, now);
    expect(late).toMatchObject({ decision: 'winner', winner: 'b' });
    const c = late.comparisons[0]!;
    expect(c.difference).toBeCloseTo(50 / 700, 12);
    expect(c.interval[0]).toBeLessThan(c.difference);
    expect(c.interval[1]).toBeGreaterThan(c.difference);
  });

  it('says no difference when the sample is reached and the test is not significant', () => {
    const r = analyseExperiment('m', design({}), [outcomes('a', 800, 80), outcomes('b', 800, 84)], basicStatistics, now);
    expect(r).toMatchObject({ decision: 'no_difference', winner: null });
  });

  it('analyses a continuous metric with Welch’s t-test', () => {
    const p = parseTrafficConfig({ split: { variants: [{ name: 'a', version: 1, weight: 50 }, { name: 'b', version: 2, weight: 50 }], experiment: { metric: 'continuous' } } }, 'm');
    const csv = ['variant,outcome', ...Array.from({ length: 40 }, (_, i) => `a,${10 + (i % 5)}`), ...Array.from({ length: 40 }, (_, i) => `b,${12 + (i % 5)}`)].join('\n');
    const r = analyseExperiment('m', p.routing as SplitPolicy & { experiment: ExperimentConfig }, outcomesFromCsv(csv), basicStatistics, now);
    expect(r.comparisons[0]).toMatchObject({ test: 'welch_t', difference: 2 });
    expect(r.comparisons[0]!.pValue).toBeLessThan(1e-6);
    expect(r.decision).toBe('keep_running');
    expect(() => outcomesFromCsv('variant,value\na,1')).toThrow(/a 'variant' column and an 'outcome' or 'label' column/);
    expect(() => outcomesFromCsv('variant,outcome\na,')).toThrow(/CSV line 2/);
    // Text that is not a number is a label; a label column goes beside numeric outcomes.
    expect(outcomesFromCsv('variant,outcome\na,x\na,1')[0]).toMatchObject({ served: 2, outcomes: 1, sum: 1, labels: { x: 1 } });
    expect(outcomesFromCsv('variant,outcome,label\na,0,__proto__\na,1,')[0]).toMatchObject({ outcomes: 2, labels: { ['__proto__']: 1 } });
  });
});

describe('configuration and the analysis endpoint', () => {
  it('reads traffic policies from models[].traffic of the server configuration, naming bad ones', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-traffic-config-'));
    try {
      const file = path.join(dir, 'inferd.yaml');
      await writeFile(
        file,
        [
          'models:',
          '  - repository: digits',
          '    traffic:',
          '      canary: { baseline: 1, canary: 2, analysis: { interval: 30s } }',
          '  - registry: fraud@champion',
          '    traffic:',
          '      shadow: { version: 4, percent: 10 }',
        ].join('\n'),
      );
      const policies = configuredTrafficPolicies(loadConfig({ file, env: {} }).models);
      expect([...policies.keys()]).toEqual(['digits', 'fraud']);
      expect(policies.get('digits')!.routing).toMatchObject({ kind: 'canary', analysis: { intervalMs: 30_000 } });
      await writeFile(file, ['models:', '  - repository: digits', '    traffic: { split: { variants: [{ version: 1, weight: 90 }] } }'].join('\n'));
      expect(() => configuredTrafficPolicies(loadConfig({ file, env: {} }).models)).toThrow(/models\[0\]\.traffic\.split: the variant weights sum to 90, not 100/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports per-version error and success rates and latency percentiles over a window', async () => {
    const clock = new ManualClock(100_000);
    const traffic = await TrafficService.open(new Map(), { clock });
    for (let i = 0; i < 100; i++) traffic.observe('fraud', '2', i < 5, i + 1);
    traffic.observe('fraud', '1', false, 3);
    clock.advance(30_000);
    traffic.observe('fraud', '2', true, 1000);
    const all = await getAnalysis({ traffic, served: { versions: () => ['1', '2'] } }, 'fraud', { window: '1m' });
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({
      window_seconds: 60,
      totals: { requests: 102, errors: 6 },
      versions: { '1': { requests: 1, error_rate: 0 }, '2': { requests: 101, errors: 6, p50_ms: 51, p95_ms: 96, p99_ms: 100 } },
    });
    const recent = await getAnalysis({ traffic }, 'fraud', { window: '10s', version: '2' });
    expect(recent.body).toMatchObject({ totals: { requests: 1, errors: 1, success_rate: 0 } });
    expect(await getAnalysis({ traffic }, 'fraud', { window: 'soon' })).toMatchObject({ status: 400 });
    await traffic.close();
  });
});

describe('sequential decision', () => {
  it('stops early on an always-valid p-value when the statistics provide one, and only for a better treatment', () => {
    const sequential = (p: number) => ({ ...basicStatistics, sequentialTwoProportion: () => ({ pValue: p }) });
    const data = [outcomes('a', 200, 20), outcomes('b', 200, 45)];
    const early = analyseExperiment('m', design({}), data, sequential(0.001), { startedAt: 0, now: 86_400_000 });
    expect(early).toMatchObject({ decision: 'winner', winner: 'b', sampleReached: false });
    expect(early.comparisons[0]!.sequentialPValue).toBe(0.001);
    expect(early.reason).toMatch(/sequential test/);
    expect(analyseExperiment('m', design({}), data, sequential(0.2), { startedAt: 0, now: 86_400_000 }).decision).toBe('keep_running');
    const worse = [outcomes('a', 200, 45), outcomes('b', 200, 20)];
    expect(analyseExperiment('m', design({}), worse, sequential(0.001), { startedAt: 0, now: 86_400_000 }).decision).toBe('keep_running');
    expect(analyseExperiment('m', design({}), data, basicStatistics, { startedAt: 0, now: 86_400_000 }).comparisons[0]!.sequentialPValue).toBeNull();
  });
});
