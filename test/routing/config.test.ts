import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/validate.js';
import { DEFAULT_CANARY_STEPS, parseDuration, parseTrafficConfig, trafficConfigOf, versionsOf } from '../../src/routing/config.js';

function problem(raw: unknown): string {
  try {
    parseTrafficConfig(raw, 'fraud');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('traffic configuration', () => {
  it('reads a split with sticky key and experiment', () => {
    const p = parseTrafficConfig(
      {
        split: {
          variants: [
            { name: 'control', version: 1, weight: 50 },
            { name: 'treatment', version: '2', weight: 50 },
          ],
          sticky: { header: 'X-User-Id' },
          experiment: { baseline_rate: 0.03, mde: 0.2 },
        },
      },
      'fraud',
    );
    expect(p.routing).toMatchObject({ kind: 'split', sticky: { header: 'x-user-id' }, variants: [{ version: '1' }, { version: '2' }] });
    expect(p.routing?.kind === 'split' && p.routing.experiment).toMatchObject({ name: 'fraud', control: 'control', alpha: 0.05, power: 0.8, relative: true, minDays: 14 });
  });

  it("defaults a canary to the guide's 5/25/50/100 with 15/30/60 minute pauses", () => {
    const p = parseTrafficConfig({ canary: { baseline: 1, canary: 2 } }, 'fraud');
    expect(p.routing?.kind === 'canary' && p.routing.steps).toEqual(DEFAULT_CANARY_STEPS);
    expect(p.routing?.kind === 'canary' && p.routing.analysis).toMatchObject({ intervalMs: 60_000, failureLimit: 0, inconclusiveLimit: 2, consecutiveErrorLimit: 4, maxErrorRate: 0.05 });
  });

  it("builds Flagger's step_weight/max_weight progression and maps threshold to failure_limit", () => {
    const p = parseTrafficConfig({ canary: { baseline: 1, canary: 2, step_weight: 20, max_weight: 60, analysis: { interval: '2s', threshold: 3, min_success_rate: 0.99 } } }, 'm');
    if (p.routing?.kind !== 'canary') throw new Error('not a canary');
    expect(p.routing.steps.map((s) => s.weight)).toEqual([20, 40, 60, 100]);
    expect(p.routing.steps[0]!.pauseMs).toBe(2000);
    expect(p.routing.analysis.failureLimit).toBe(2);
    expect(p.routing.analysis.maxErrorRate).toBeCloseTo(0.01, 12);
  });

  it('takes durations down to milliseconds', () => {
    expect(parseDuration('500ms', 'x')).toBe(500);
    expect(parseDuration('30s', 'x')).toBe(30_000);
    expect(parseDuration('15m', 'x')).toBe(900_000);
    expect(parseDuration('1h', 'x')).toBe(3_600_000);
    expect(parseDuration(2, 'x')).toBe(2000);
    expect(() => parseDuration('soon', 'x')).toThrow(/'soon' is not a duration/);
  });

  it('round-trips through its document form', () => {
    const raw = {
      canary: { baseline: '1', canary: '2', steps: [{ weight: 10, pause: '30s' }, { weight: 100 }], analysis: { interval: '1s', failure_limit: 1, max_p99_ms: 250 } },
      shadow: { version: '3', percent: 5 },
    };
    const p = parseTrafficConfig(raw, 'm');
    expect(parseTrafficConfig(trafficConfigOf(p), 'm')).toEqual(p);
    expect(versionsOf(p).sort()).toEqual(['1', '2', '3']);
  });

  it.each([
    [{ split: { variants: [{ version: 1, weight: 60 }, { version: 2, weight: 50 }] } }, /weights sum to 110, not 100/],
    [{ split: { variants: [{ version: 1, weight: 50 }, { version: 1, weight: 50 }] } }, /version 1 appears in two variants/],
    [{ split: { variants: [{ version: 1, weight: 100 }], sticky: { header: 'a', parameter: 'b' } } }, /exactly one of 'header'/],
    [{ split: { variants: [{ version: 1, weight: 100 }] }, canary: { baseline: 1, canary: 2 } }, /not split and canary/],
    [{ canary: { baseline: 1, canary: 1 } }, /baseline and canary are both version 1/],
    [{ canary: { baseline: 1, canary: 2, steps: [{ weight: 50 }, { weight: 20 }] } }, /a canary only grows/],
    [{ canary: { baseline: 1, canary: 2, analysis: { failure_limit: 1, threshold: 2 } } }, /not both/],
    [{ canary: { baseline: 1, canary: 2, analysis: { interval: 'often' } } }, /analysis.interval: 'often' is not a duration/],
    [{ blue_green: { active: 2, standby: 2 } }, /active and standby are both version 2/],
    [{ shadow: { version: 2, percent: 150 } }, /shadow\/percent|'shadow.percent'/],
    [{ splitt: {} }, /unknown key 'splitt'/],
  ])('refuses %j naming the problem', (raw, message) => {
    expect(problem(raw)).toMatch(message);
  });
});
