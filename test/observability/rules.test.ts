import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { ConfigValidationError, DEFAULT_SLO_CONFIG, validateSloConfig } from '../../src/observability/config.js';
import { buildRules, driftAlerts, generateRules, leMatcher, renderRules, type AlertingRule, type RecordingRule } from '../../src/observability/rules.js';
import { burnRateTests } from './burn-scenarios.js';
import { promtool } from './promtool.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const deployedRules = join(repoRoot, 'deploy', 'prometheus', 'inferd-rules.yml');
const work = mkdtempSync(join(tmpdir(), 'inferd-rules-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
}

function allRules(rules = buildRules()) {
  return rules.groups.flatMap((g) => g.rules);
}

describe('generated rules', () => {
  test('the default rules pass promtool check rules', () => {
    const result = promtool('check', 'rules', write('default.yml', generateRules()));
    expect(result.output).toContain('SUCCESS');
    expect(result.status, result.output).toBe(0);
  });

  test('deploy/prometheus/inferd-rules.yml is the output of the default config', () => {
    expect(readFileSync(deployedRules, 'utf8')).toBe(generateRules());
    expect(promtool('check', 'rules', deployedRules).status).toBe(0);
  });

  test('the example deploy/prometheus/prometheus.yml is valid and loads the rules', () => {
    const result = promtool('check', 'config', join(repoRoot, 'deploy', 'prometheus', 'prometheus.yml'));
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS: 40 rules found');
  });

  test('records the contract series: quantiles, error ratios, latency and availability good ratios over every alert window', () => {
    const records = allRules()
      .filter((r): r is RecordingRule => 'record' in r)
      .map((r) => `${r.record}${r.labels?.['threshold'] === undefined ? '' : `{threshold=${r.labels['threshold']}}`}`);
    for (const name of ['inferd:inference_latency_seconds:p95', 'inferd:inference_latency_seconds:p99', 'inferd:inference_requests:rate5m']) expect(records).toContain(name);
    for (const w of ['5m', '30m', '1h', '6h', '3d']) {
      expect(records).toContain(`inferd:inference_error_ratio:rate${w}`);
      expect(records).toContain(`inferd:slo_latency_good_ratio:rate${w}{threshold=0.5}`);
      expect(records).toContain(`inferd:slo_latency_good_ratio:rate${w}{threshold=1}`);
      expect(records).toContain(`inferd:slo_availability_good_ratio:avg${w}`);
    }
    const good = allRules().find((r): r is RecordingRule => 'record' in r && r.record === 'inferd:slo_latency_good_ratio:rate5m');
    expect(good?.expr).toContain('inferd_inference_duration_seconds_bucket{le="0.5"}[5m]');
  });

  test('alerts are the workbook form: long and short window over the same burn threshold, no p95 comparisons', () => {
    const alerts = allRules().filter((r): r is AlertingRule => 'alert' in r && r.labels['kind'] !== 'drift');
    expect(alerts).toHaveLength(3 * 4);
    const fast = alerts.find((a) => a.alert === 'InferdErrorBudgetBurnFast');
    expect(fast?.expr.replace(/\s+/g, ' ').trim()).toBe('inferd:inference_error_ratio:rate1h > (14.4 * 0.001) and inferd:inference_error_ratio:rate5m > (14.4 * 0.001)');
    expect(fast?.labels).toEqual({ severity: 'page', slo: 'errors' });
    const ticket = alerts.find((a) => a.alert === 'InferdLatencyBudgetBurnTicket' && a.labels['threshold'] === '0.5');
    expect(ticket?.expr).toContain('(1 - inferd:slo_latency_good_ratio:rate3d{threshold="0.5"}) > (1 * 0.05)');
    expect(ticket?.labels['severity']).toBe('ticket');
    for (const a of alerts) expect(a.expr).not.toMatch(/latency_seconds:p9/);
  });

  test('drift alerts read the drift series by model and version', () => {
    const drift = buildRules().groups.find((g) => g.name === 'inferd-drift')!.rules as AlertingRule[];
    expect(drift.map((a) => [a.alert, a.labels['severity']])).toEqual([
      ['InferdDataDrift', 'ticket'],
      ['InferdDriftSevere', 'page'],
      ['InferdDriftCaptureDropping', 'ticket'],
      ['InferdDriftActionFailed', 'ticket'],
    ]);
    expect(drift[0]!.expr.trim()).toBe('max by (model, version) (inferd_drift_detected) == 1');
  });

  test('bucket bounds are matched in both spellings Prometheus may store', () => {
    expect(leMatcher(0.5)).toBe('le="0.5"');
    expect(leMatcher(1)).toBe('le=~"1|1\\\\.0"');
  });

  test('a latency threshold that is not a bucket bound is rejected', () => {
    const slo = { ...DEFAULT_SLO_CONFIG, latency: [{ thresholdSeconds: 0.3, objective: 0.99 }] };
    expect(() => buildRules(slo)).toThrow(ConfigValidationError);
    expect(() => buildRules(slo)).toThrow(/0\.3 is not a latency bucket bound/);
    expect(() => validateSloConfig({ latency: [{ thresholdSeconds: 0.3, objective: 0.99 }] })).toThrow(/0\.3 is not a latency bucket bound/);
    // The same threshold is fine when it is one of the configured buckets.
    expect(buildRules(slo, [0.1, 0.3, 1]).groups.length).toBeGreaterThan(0);
  });

  test('a custom config produces rules that promtool accepts', () => {
    const slo = validateSloConfig(
      {
        errors: { objective: 0.995 },
        latency: [{ thresholdSeconds: 0.25, objective: 0.99 }],
        availability: { enabled: false },
        evaluationInterval: '1m',
        alertLabels: { team: 'ml-platform', severity: 'overridden?' },
        runbookUrl: 'https://runbooks.example/inferd-slo',
      },
      [0.05, 0.25, 1],
    );
    const rules = buildRules(slo, [0.05, 0.25, 1]);
    const text = renderRules(rules, slo);
    expect(promtool('check', 'rules', write('custom.yml', text)).status).toBe(0);
    const alerts = allRules(rules).filter((r): r is AlertingRule => 'alert' in r);
    expect(alerts.map((a) => a.alert)).not.toContain('InferdAvailabilityBudgetBurnFast');
    expect(alerts.every((a) => a.labels['team'] === 'ml-platform' && (a.labels['severity'] === 'page' || a.labels['severity'] === 'ticket'))).toBe(true);
    expect(alerts.every((a) => a.annotations['runbook_url'] === 'https://runbooks.example/inferd-slo')).toBe(true);
    expect(rules.groups.every((g) => g.interval === '1m')).toBe(true);
    expect(text).toContain('(14.4 * 0.005)');
  });
});

describe('slo config validation', () => {
  test('defaults with no section at all', () => {
    expect(validateSloConfig(undefined)).toEqual(DEFAULT_SLO_CONFIG);
  });

  test('names unknown keys and bad values, all at once', () => {
    let error: unknown;
    try {
      validateSloConfig({ errors: { objective: 0.5, target: 1 }, latency: [{ thresholdSeconds: 0.5 }], evaluationInterval: 'soon', extra: true });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const issues = (error as ConfigValidationError).issues.join('\n');
    expect(issues).toContain('slo.extra is not a known key');
    expect(issues).toContain('slo.errors.target is not a known key');
    expect(issues).toContain('slo.errors.objective must be a fraction above');
    expect(issues).toContain('slo.latency[0].objective is required');
    expect(issues).toContain('slo.evaluationInterval must be a Prometheus duration');
  });
});

describe('promtool test rules: every alert fires on a budget-burning series and stays quiet on one that is not', () => {
  test('error, latency and availability SLOs, fast and slow pages and tickets', () => {
    const rulesFile = write('burn-rules.yml', generateRules());
    const testFile = write('burn-tests.yml', stringify(burnRateTests(buildRules(), rulesFile), { lineWidth: 0 }));
    const result = promtool('test', 'rules', testFile);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });

  test('the same tests catch an alert without its short window (it would not reset after recovery)', () => {
    const broken = buildRules();
    for (const group of broken.groups) {
      for (const rule of group.rules) {
        if ('alert' in rule && rule.alert === 'InferdErrorBudgetBurnFast') rule.expr = 'inferd:inference_error_ratio:rate1h > (14.4 * 0.001)';
      }
    }
    const rulesFile = write('broken-rules.yml', renderRules(broken));
    const tests = burnRateTests(buildRules(), rulesFile);
    tests.tests = tests.tests.filter((t) => t.name === 'error budget burn');
    const testFile = write('broken-tests.yml', stringify(tests, { lineWidth: 0 }));
    const result = promtool('test', 'rules', testFile);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('InferdErrorBudgetBurnFast');
    expect(result.output).toContain('recovered');
  });

});

describe('promtool test rules: drift alerts', () => {
  const render = (template: string, labels: Record<string, string>): string => template.replace(/\{\{ \$labels\.([a-zA-Z_]+) \}\}/g, (_, name: string) => labels[name] ?? '');
  const expected = (name: string, series: Record<string, string>) => {
    const rule = driftAlerts().find((a) => a.alert === name)!;
    const labels = { ...series, ...rule.labels };
    return { exp_labels: labels, exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, render(v, labels)])) };
  };

  test('data-set drift and severe drift fire for the drifted version only, and clear with the next quiet window', () => {
    const bc = { model: 'breast_cancer', version: '1' };
    const other = { model: 'digits', version: '2' };
    const series = (name: string, labels: Record<string, string>, values: string) => ({ series: `${name}{model="${labels['model']}",version="${labels['version']}"}`, values });
    const tests = {
      rule_files: [write('drift-rules.yml', generateRules())],
      evaluation_interval: '1m',
      tests: [
        {
          name: 'drift',
          interval: '1m',
          input_series: [
            // windows judged at minutes 0, 5 (drift, severe) and 10 (quiet again)
            series('inferd_drift_detected', bc, '0x4 1x4 0x4'),
            series('inferd_drift_severity', bc, '0x4 3x4 0x4'),
            series('inferd_drift_detected', other, '0x12'),
            series('inferd_drift_severity', other, '1x12'),
            { series: 'inferd_drift_capture_dropped_total{model="breast_cancer",version="1",reason="queue_full"}', values: '0+10x40' },
          ],
          alert_rule_test: [
            { eval_time: '3m', alertname: 'InferdDataDrift', exp_alerts: [] },
            { eval_time: '6m', alertname: 'InferdDataDrift', exp_alerts: [expected('InferdDataDrift', bc)] },
            { eval_time: '6m', alertname: 'InferdDriftSevere', exp_alerts: [expected('InferdDriftSevere', bc)] },
            { eval_time: '11m', alertname: 'InferdDataDrift', exp_alerts: [] },
            { eval_time: '11m', alertname: 'InferdDriftSevere', exp_alerts: [] },
            // dropping must last 15 minutes before it alerts
            { eval_time: '10m', alertname: 'InferdDriftCaptureDropping', exp_alerts: [] },
            { eval_time: '35m', alertname: 'InferdDriftCaptureDropping', exp_alerts: [expected('InferdDriftCaptureDropping', bc)] },
          ],
        },
      ],
    };
    const result = promtool('test', 'rules', write('drift-tests.yml', stringify(tests, { lineWidth: 0 })));
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });
});
