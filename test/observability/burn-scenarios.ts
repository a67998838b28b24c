/**
 * promtool unit tests of the burn-rate alerts: synthetic series that burn each budget at a known
 * rate, one minute apart over seven hours, and the alerts each must (and must not) raise.
 * Budgets and thresholds are those of the default SLO config:
 *   errors 99.9%      page >1.44% (1h & 5m), page >0.6% (6h & 30m), ticket >0.1% (3d & 6h)
 *   latency 0.5s 95%  page >72%, page >30%, ticket >5% slower than 0.5 s
 *   latency 1s 99%    page >14.4%, page >6%, ticket >1% slower than 1 s
 *   availability 99.5% page >7.2%, page >3%, ticket >0.5% of scrapes down
 */
import type { AlertingRule, RulesFile } from '../../src/observability/rules.js';

/** Evaluation time of every check: the end of the seven hours of data. */
const END_MINUTES = 420;

/** Per-minute increments in segments: [minutes, perMinute]. */
type Segments = Array<[minutes: number, perMinute: number]>;

/** A counter's cumulative values for minutes 0..END_MINUTES (the first value is 0). */
function counter(segments: Segments): string {
  const values = [0];
  let total = 0;
  for (const [minutes, perMinute] of segments) {
    for (let i = 0; i < minutes; i++) {
      total += perMinute;
      values.push(Number(total.toFixed(6)));
    }
  }
  if (values.length !== END_MINUTES + 1) throw new Error(`segments cover ${values.length - 1} minutes, not ${END_MINUTES}`);
  return values.join(' ');
}

/** A gauge's values for minutes 0..END_MINUTES, from [minutes, value] segments. */
function gauge(segments: Segments): string {
  const values: number[] = [];
  for (const [minutes, value] of segments) for (let i = 0; i < minutes; i++) values.push(value);
  if (values.length !== END_MINUTES + 1) throw new Error(`segments cover ${values.length} samples, not ${END_MINUTES + 1}`);
  return values.join(' ');
}

interface Series {
  series: string;
  values: string;
}

/** 1000 inferences a minute of which a fraction fail, per segment: [minutes, errorFraction]. */
function errorSeries(model: string, segments: Segments): Series[] {
  const labels = `model="${model}",version="1",protocol="rest"`;
  return [
    { series: `inferd_inference_requests_total{${labels},result="success"}`, values: counter(segments.map(([m, f]) => [m, 1000 * (1 - f)])) },
    { series: `inferd_inference_requests_total{${labels},result="error"}`, values: counter(segments.map(([m, f]) => [m, 1000 * f])) },
  ];
}

/** 1000 inferences a minute, with the given fractions slower than 0.5 s and slower than 1 s. */
function latencySeries(model: string, slowerThanHalf: number, slowerThanOne: number): Series[] {
  const labels = `model="${model}",version="1",protocol="rest"`;
  const minutes: Segments = [[END_MINUTES, 1000]];
  const scaled = (fraction: number): Segments => [[END_MINUTES, 1000 * fraction]];
  return [
    { series: `inferd_inference_duration_seconds_bucket{${labels},le="0.5"}`, values: counter(scaled(1 - slowerThanHalf)) },
    { series: `inferd_inference_duration_seconds_bucket{${labels},le="1"}`, values: counter(scaled(1 - slowerThanOne)) },
    { series: `inferd_inference_duration_seconds_bucket{${labels},le="+Inf"}`, values: counter(minutes) },
    { series: `inferd_inference_duration_seconds_count{${labels}}`, values: counter(minutes) },
  ];
}

interface Expected {
  alertname: string;
  /** Label sets of the alerts that must fire; every other one must not. */
  firing: Array<Record<string, string>>;
}

function findAlert(rules: RulesFile, name: string, labels: Record<string, string>): AlertingRule {
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      if ('alert' in rule && rule.alert === name && (labels['threshold'] === undefined || rule.labels['threshold'] === labels['threshold'])) return rule;
    }
  }
  throw new Error(`no alert ${name} for ${JSON.stringify(labels)}`);
}

function render(template: string, labels: Record<string, string>): string {
  return template.replace(/\{\{ \$labels\.([a-zA-Z_]+) \}\}/g, (_, name: string) => labels[name] ?? '');
}

function checks(rules: RulesFile, expected: Expected[]): unknown[] {
  return expected.map(({ alertname, firing }) => ({
    eval_time: `${END_MINUTES}m`,
    alertname,
    exp_alerts: firing.map((seriesLabels) => {
      const rule = findAlert(rules, alertname, seriesLabels);
      const labels = { ...seriesLabels, ...rule.labels };
      return {
        exp_labels: labels,
        exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, render(v, labels)])),
      };
    }),
  }));
}

const mv = (model: string) => ({ model, version: '1' });

export interface PromtoolTestFile {
  rule_files: string[];
  evaluation_interval: string;
  tests: Array<{ name: string; interval: string; input_series: Series[]; alert_rule_test: unknown[] }>;
}

/** The promtool test file (as an object to serialise) for a rules file at rulesPath. */
export function burnRateTests(rules: RulesFile, rulesPath: string): PromtoolTestFile {
  const errorModels = {
    // 2% errors throughout: every error alert.
    fast: errorSeries('fast', [[END_MINUTES, 0.02]]),
    // 0.8%: above the 6x threshold, below the 14.4x one.
    slow: errorSeries('slow', [[END_MINUTES, 0.008]]),
    // 0.3%: only the 1x ticket.
    ticket: errorSeries('ticket', [[END_MINUTES, 0.003]]),
    // 0.05%: within budget, nothing.
    ok: errorSeries('ok', [[END_MINUTES, 0.0005]]),
    // 5% errors that stopped 20 minutes ago: the 1h window still burns at 14.4x but the 5m
    // window is clean, so the fast page has reset; the slow page and the ticket still fire.
    recovered: errorSeries('recovered', [
      [END_MINUTES - 20, 0.05],
      [20, 0],
    ]),
  };
  const latencyModels = [
    latencySeries('lat-fast', 0.8, 0.2),
    latencySeries('lat-slow', 0.4, 0.08),
    latencySeries('lat-ticket', 0.1, 0.02),
    latencySeries('lat-ok', 0.03, 0.005),
  ];
  const half = (model: string) => ({ ...mv(model), threshold: '0.5' });
  const one = (model: string) => ({ ...mv(model), threshold: '1' });

  const availability = (name: string, segments: Segments, expected: Expected[]): PromtoolTestFile['tests'][number] => ({
    name,
    interval: '1m',
    input_series: [{ series: 'up{job="inferd",instance="10.0.0.1:8080"}', values: gauge(segments) }],
    alert_rule_test: checks(rules, expected),
  });
  const job = { job: 'inferd' };

  return {
    rule_files: [rulesPath],
    evaluation_interval: '1m',
    tests: [
      {
        name: 'error budget burn',
        interval: '1m',
        input_series: Object.values(errorModels).flat(),
        alert_rule_test: checks(rules, [
          { alertname: 'InferdErrorBudgetBurnFast', firing: [mv('fast')] },
          { alertname: 'InferdErrorBudgetBurnSlow', firing: [mv('fast'), mv('slow'), mv('recovered')] },
          { alertname: 'InferdErrorBudgetBurnTicket', firing: [mv('fast'), mv('slow'), mv('ticket'), mv('recovered')] },
        ]),
      },
      {
        name: 'latency budget burn',
        interval: '1m',
        input_series: latencyModels.flat(),
        alert_rule_test: checks(rules, [
          { alertname: 'InferdLatencyBudgetBurnFast', firing: [half('lat-fast'), one('lat-fast')] },
          { alertname: 'InferdLatencyBudgetBurnSlow', firing: [half('lat-fast'), one('lat-fast'), half('lat-slow'), one('lat-slow')] },
          {
            alertname: 'InferdLatencyBudgetBurnTicket',
            firing: [half('lat-fast'), one('lat-fast'), half('lat-slow'), one('lat-slow'), half('lat-ticket'), one('lat-ticket')],
          },
        ]),
      },
      // Down for the last 20 minutes: 33% of the last hour, all of the last 5 minutes.
      availability(
        'availability: outage in progress',
        [
          [END_MINUTES - 20 + 1, 1],
          [20, 0],
        ],
        [
          { alertname: 'InferdAvailabilityBudgetBurnFast', firing: [job] },
          { alertname: 'InferdAvailabilityBudgetBurnSlow', firing: [job] },
          { alertname: 'InferdAvailabilityBudgetBurnTicket', firing: [job] },
        ],
      ),
      // Down 15 minutes, back for the last 16: the fast page has reset, the slow one has not.
      availability(
        'availability: recent outage, recovered',
        [
          [390, 1],
          [15, 0],
          [16, 1],
        ],
        [
          { alertname: 'InferdAvailabilityBudgetBurnFast', firing: [] },
          { alertname: 'InferdAvailabilityBudgetBurnSlow', firing: [job] },
          { alertname: 'InferdAvailabilityBudgetBurnTicket', firing: [job] },
        ],
      ),
      // Down 5 minutes five hours ago: 1.4% of the last 6 hours, nothing in the last hour.
      availability(
        'availability: old short outage',
        [
          [120, 1],
          [5, 0],
          [296, 1],
        ],
        [
          { alertname: 'InferdAvailabilityBudgetBurnFast', firing: [] },
          { alertname: 'InferdAvailabilityBudgetBurnSlow', firing: [] },
          { alertname: 'InferdAvailabilityBudgetBurnTicket', firing: [job] },
        ],
      ),
      // One failed scrape in seven hours: within budget.
      availability(
        'availability: within budget',
        [
          [200, 1],
          [1, 0],
          [220, 1],
        ],
        [
          { alertname: 'InferdAvailabilityBudgetBurnFast', firing: [] },
          { alertname: 'InferdAvailabilityBudgetBurnSlow', firing: [] },
          { alertname: 'InferdAvailabilityBudgetBurnTicket', firing: [] },
        ],
      ),
    ],
  };
}
