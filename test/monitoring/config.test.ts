import { describe, expect, it } from 'vitest';
import { driftSettings, parseDriftConfig } from '../../src/monitoring/config.js';

describe('drift config', () => {
  it('fills defaults', () => {
    const settings = driftSettings(parseDriftConfig({}, 'bc/config.yaml'), 'bc/config.yaml');
    expect(settings.window).toEqual({ maxRows: 10000 });
    expect(settings.options).toMatchObject({ datasetThreshold: 0.5, correction: 'none', methods: {}, policy: { minRows: 100, psi: { small: 0.1, moderate: 0.15, severe: 0.25 } } });
    expect(settings.actions).toEqual([]);
    expect(settings.minSeverity).toBe('small');
  });

  it('maps every key, reading the webhook secret from the environment', () => {
    const config = parseDriftConfig(
      {
        window: { max_rows: 5000, max_age_seconds: 600, capacity: 2000 },
        method: 'psi',
        methods: { mean_area: 'ks' },
        thresholds: { ks: 0.01 },
        column_thresholds: { mean_area: 0.001 },
        dataset_threshold: 0.3,
        correction: 'fdr_bh',
        min_rows: 500,
        severity: { psi: { small: 0.2, moderate: 0.3, severe: 0.5 } },
        min_severity: 'moderate',
        actions: [{ webhook: 'https://hooks.example/drift', secret_env: 'HOOK_SECRET', attempts: 3 }, { command: 'true' }],
      },
      'bc/config.yaml',
    );
    const settings = driftSettings(config, 'bc/config.yaml', { HOOK_SECRET: 'k' });
    expect(settings.window).toEqual({ maxRows: 5000, maxAgeMs: 600_000, capacity: 2000 });
    expect(settings.options).toMatchObject({ method: 'psi', methods: { mean_area: 'ks' }, thresholds: { ks: 0.01 }, columnThresholds: { mean_area: 0.001 }, datasetThreshold: 0.3, correction: 'fdr_bh' });
    expect(settings.options.policy).toMatchObject({ minRows: 500, psi: { small: 0.2, moderate: 0.3, severe: 0.5 } });
    expect(settings.actions).toEqual([
      { kind: 'webhook', url: 'https://hooks.example/drift', secret: 'k', attempts: 3 },
      { kind: 'command', command: 'true' },
    ]);
    expect(settings.minSeverity).toBe('moderate');
  });

  it('names the problem', () => {
    expect(() => parseDriftConfig({ method: 'magic' }, 'bc/config.yaml')).toThrow(/bc\/config.yaml: 'method'/);
    expect(() => parseDriftConfig({ windw: {} }, 'bc/config.yaml')).toThrow(/unknown key 'windw'/);
    expect(() => driftSettings(parseDriftConfig({ thresholds: { kss: 0.1 } }, 'x'), 'x')).toThrow(/drift.thresholds has 'kss'/);
    expect(() => driftSettings(parseDriftConfig({ actions: [{ webhook: 'https://h.example', secret_env: 'NOPE' }] }, 'x'), 'x', {})).toThrow(/NOPE, which is not set/);
    expect(() => driftSettings(parseDriftConfig({ actions: [{ webhook: 'ftp://h.example' }] }, 'x'), 'x')).toThrow(/must be http or https/);
    expect(() => driftSettings(parseDriftConfig({ severity: { psi: { small: 0.3, moderate: 0.2, severe: 0.5 } } }, 'x'), 'x')).toThrow(/small ≤ moderate ≤ severe/);
  });
});
