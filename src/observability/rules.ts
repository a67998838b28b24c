/**
 * Prometheus recording and alerting rules for inferd's SLOs, generated from the slo config.
 *
 * Alerts follow the multiwindow, multi-burn-rate form of the Google SRE workbook ("Alerting on
 * SLOs"), for a 30-day SLO period: an alert fires when the error budget burns faster than a
 * factor over a long window AND over a short window (the short one makes it stop soon after
 * the problem does):
 *   page    14.4x over 1h and 5m   (2% of the monthly budget in one hour)
 *   page       6x over 6h and 30m  (5% of the budget in six hours)
 *   ticket     1x over 3d and 6h   (10% of the budget in three days)
 * A burn rate is the bad-event ratio divided by the budget (1 - objective), so each condition
 * reads "bad ratio over W > factor * budget".
 */
import { stringify } from 'yaml';
import { DEFAULT_LATENCY_BUCKETS, DEFAULT_SLO_CONFIG, ConfigValidationError, type SloConfig, checkLatencyThresholds } from './config.js';

export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  interval: string;
  rules: Array<RecordingRule | AlertingRule>;
}

export interface RulesFile {
  groups: RuleGroup[];
}

export interface BurnWindow {
  /** Suffix of the alert name. */
  name: 'Fast' | 'Slow' | 'Ticket';
  severity: 'page' | 'ticket';
  long: string;
  short: string;
  factor: number;
}

export const BURN_WINDOWS: readonly BurnWindow[] = [
  { name: 'Fast', severity: 'page', long: '1h', short: '5m', factor: 14.4 },
  { name: 'Slow', severity: 'page', long: '6h', short: '30m', factor: 6 },
  { name: 'Ticket', severity: 'ticket', long: '3d', short: '6h', factor: 1 },
];

/** Every window some alert reads. */
export const RATE_WINDOWS: readonly string[] = ['5m', '30m', '1h', '6h', '3d'];

/** The SLO period the burn factors are computed for. */
const PERIOD_DAYS = 30;

export const RECORDED = {
  latencyQuantile: (q: 'p50' | 'p95' | 'p99') => `inferd:inference_latency_seconds:${q}`,
  requestRate: 'inferd:inference_requests:rate5m',
  errorRatio: (window: string) => `inferd:inference_error_ratio:rate${window}`,
  latencyGoodRatio: (window: string) => `inferd:slo_latency_good_ratio:rate${window}`,
  availabilityGoodRatio: (window: string) => `inferd:slo_availability_good_ratio:avg${window}`,
} as const;

const BY_VERSION = 'model, version';

/** Builds the rule groups; throws ConfigValidationError when a latency threshold is not a bucket bound. */
export function buildRules(slo: SloConfig = DEFAULT_SLO_CONFIG, latencyBuckets: readonly number[] = DEFAULT_LATENCY_BUCKETS): RulesFile {
  const issues: string[] = [];
  checkLatencyThresholds(slo.latency, latencyBuckets, 'slo', issues);
  if (issues.length > 0) throw new ConfigValidationError('slo', issues);

  const interval = slo.evaluationInterval;
  const groups: RuleGroup[] = [
    {
      name: 'inferd-latency',
      interval,
      rules: [
        ...(['p50', 'p95', 'p99'] as const).map((q) => ({
          record: RECORDED.latencyQuantile(q),
          expr: `histogram_quantile(0.${q.slice(1)}, sum by (${BY_VERSION}, le) (rate(inferd_inference_duration_seconds_bucket[5m])))`,
        })),
        {
          record: RECORDED.requestRate,
          expr: `sum by (${BY_VERSION}, result) (rate(inferd_inference_requests_total[5m]))`,
        },
      ],
    },
  ];
  const alerts: AlertingRule[] = [];

  if (slo.errors.enabled) {
    groups.push({
      name: 'inferd-slo-errors',
      interval,
      rules: RATE_WINDOWS.map((w) => ({
        record: RECORDED.errorRatio(w),
        expr: ratio(
          `sum by (${BY_VERSION}) (rate(inferd_inference_requests_total{result="error"}[${w}]))`,
          `sum by (${BY_VERSION}) (rate(inferd_inference_requests_total[${w}]))`,
        ),
      })),
    });
    const budget = budgetOf(slo.errors.objective);
    for (const window of BURN_WINDOWS) {
      alerts.push(
        alert(slo, `InferdErrorBudgetBurn${window.name}`, window, {
          expr: burnCondition((w) => RECORDED.errorRatio(w), window, budget),
          labels: { slo: 'errors' },
          summary: `Model {{ $labels.model }} version {{ $labels.version }}: error budget burn rate above ${window.factor} over ${window.long}`,
          description:
            `More than ${percent(window.factor * budget)} of the inferences of model {{ $labels.model }} version {{ $labels.version }} failed ` +
            `over the last ${window.long} and ${window.short}. Objective: ${percent(slo.errors.objective)} succeed; ${exhaustion(window)}`,
        }),
      );
    }
  }

  if (slo.latency.length > 0) {
    const rules: RecordingRule[] = [];
    for (const objective of slo.latency) {
      const threshold = String(objective.thresholdSeconds);
      for (const w of RATE_WINDOWS) {
        rules.push({
          record: RECORDED.latencyGoodRatio(w),
          expr: ratio(
            `sum by (${BY_VERSION}) (rate(inferd_inference_duration_seconds_bucket{${leMatcher(objective.thresholdSeconds)}}[${w}]))`,
            `sum by (${BY_VERSION}) (rate(inferd_inference_duration_seconds_count[${w}]))`,
          ),
          labels: { threshold },
        });
      }
      const budget = budgetOf(objective.objective);
      for (const window of BURN_WINDOWS) {
        alerts.push(
          alert(slo, `InferdLatencyBudgetBurn${window.name}`, window, {
            expr: burnCondition((w) => `(1 - ${RECORDED.latencyGoodRatio(w)}{threshold="${threshold}"})`, window, budget),
            labels: { slo: 'latency', threshold },
            summary: `Model {{ $labels.model }} version {{ $labels.version }}: ${threshold}s latency budget burn rate above ${window.factor} over ${window.long}`,
            description:
              `More than ${percent(window.factor * budget)} of the inferences of model {{ $labels.model }} version {{ $labels.version }} took longer than ${threshold}s ` +
              `over the last ${window.long} and ${window.short}. Objective: ${percent(objective.objective)} within ${threshold}s; ${exhaustion(window)}`,
          }),
        );
      }
    }
    groups.push({ name: 'inferd-slo-latency', interval, rules });
  }

  if (slo.availability.enabled) {
    const selector = `up{job="${slo.availability.job}"}`;
    groups.push({
      name: 'inferd-slo-availability',
      interval,
      // The fraction of scrapes that found a server up: instance-time up over instance-time.
      rules: RATE_WINDOWS.map((w) => ({
        record: RECORDED.availabilityGoodRatio(w),
        expr: ratio(`sum by (job) (sum_over_time(${selector}[${w}]))`, `sum by (job) (count_over_time(${selector}[${w}]))`),
      })),
    });
    const budget = budgetOf(slo.availability.objective);
    for (const window of BURN_WINDOWS) {
      alerts.push(
        alert(slo, `InferdAvailabilityBudgetBurn${window.name}`, window, {
          expr: burnCondition((w) => `(1 - ${RECORDED.availabilityGoodRatio(w)}{job="${slo.availability.job}"})`, window, budget),
          labels: { slo: 'availability' },
          summary: `inferd job {{ $labels.job }}: availability budget burn rate above ${window.factor} over ${window.long}`,
          description:
            `Scrapes of job {{ $labels.job }} found inferd down more than ${percent(window.factor * budget)} of the time over the last ${window.long} and ${window.short}. ` +
            `Objective: up ${percent(slo.availability.objective)} of the time; ${exhaustion(window)}`,
        }),
      );
    }
  }

  if (alerts.length > 0) groups.push({ name: 'inferd-slo-alerts', interval, rules: alerts });
  groups.push({ name: 'inferd-drift', interval, rules: driftAlerts(slo) });
  return { groups };
}

/**
 * Drift alerts, from the series of src/monitoring/metrics.ts (updated once per judged window):
 * data-set drift (ticket), a severe decision (page), drift capture dropping requests for a while,
 * and a drift action (webhook, command) that failed after its retries.
 */
export function driftAlerts(slo: SloConfig = DEFAULT_SLO_CONFIG): AlertingRule[] {
  const annotate = (summary: string, description: string): Record<string, string> => ({
    summary,
    description,
    ...(slo.runbookUrl !== undefined ? { runbook_url: slo.runbookUrl } : {}),
  });
  const mv = 'model {{ $labels.model }} version {{ $labels.version }}';
  return [
    {
      alert: 'InferdDataDrift',
      expr: `max by (${BY_VERSION}) (inferd_drift_detected) == 1\n`,
      labels: { ...slo.alertLabels, severity: 'ticket', kind: 'drift' },
      annotations: annotate(
        `Data drift on ${mv}`,
        `The last drift window of ${mv} has data-set drift: the share of drifted input features reached the threshold. See GET /v2/admin/models/{{ $labels.model }}/drift for the features.`,
      ),
    },
    {
      alert: 'InferdDriftSevere',
      expr: `max by (${BY_VERSION}) (inferd_drift_severity) >= 3\n`,
      labels: { ...slo.alertLabels, severity: 'page', kind: 'drift' },
      annotations: annotate(
        `Severe drift on ${mv}`,
        `The last drift window of ${mv} was judged severe (PSI of a drifted feature above the severe tier, or a large accuracy drop): the model may be answering on data it was not trained for.`,
      ),
    },
    {
      alert: 'InferdDriftCaptureDropping',
      expr: `sum by (${BY_VERSION}) (rate(inferd_drift_capture_dropped_total[15m])) > 0\n`,
      for: '15m',
      labels: { ...slo.alertLabels, severity: 'ticket', kind: 'drift' },
      annotations: annotate(
        `Drift capture dropping requests of ${mv}`,
        `For 15 minutes, served requests of ${mv} were left out of drift capture (hand-off queue full or unreadable inputs): drift windows see a sample only. Lower drift.sample_rate or give the server more CPU.`,
      ),
    },
    {
      alert: 'InferdDriftActionFailed',
      expr: `sum by (${BY_VERSION}, action) (increase(inferd_drift_actions_total{result="failed"}[1h])) > 0\n`,
      labels: { ...slo.alertLabels, severity: 'ticket', kind: 'drift' },
      annotations: annotate(
        `A drift action of ${mv} failed`,
        `A drift {{ $labels.action }} of ${mv} failed after its retries in the last hour: a drift decision was not delivered.`,
      ),
    },
  ];
}

/** The rules file as YAML, with a header naming the objectives it encodes. */
export function renderRules(rules: RulesFile, slo: SloConfig = DEFAULT_SLO_CONFIG): string {
  const objectives: string[] = [];
  if (slo.errors.enabled) objectives.push(`#   errors:       ${percent(slo.errors.objective)} of inferences succeed (result!="error")`);
  for (const l of slo.latency) objectives.push(`#   latency:      ${percent(l.objective)} of inferences complete within ${l.thresholdSeconds}s`);
  if (slo.availability.enabled) objectives.push(`#   availability: job "${slo.availability.job}" is up ${percent(slo.availability.objective)} of the time`);
  const header = [
    '# inferd SLO recording and alerting rules, generated by `inferd rules`.',
    '# Regenerate from the slo configuration instead of editing this file.',
    `# Objectives over a ${PERIOD_DAYS}-day period:`,
    ...objectives,
    '# Alerts: multiwindow, multi-burn-rate (page 14.4x over 1h and 5m, page 6x over 6h and 30m, ticket 1x over 3d and 6h);',
    '# drift: data-set drift (ticket), severe drift (page), capture dropping, failed drift actions.',
  ];
  return `${header.join('\n')}\n${stringify(rules, { lineWidth: 0 })}`;
}

/** The rules file for an SLO config, ready to write or print. */
export function generateRules(slo: SloConfig = DEFAULT_SLO_CONFIG, latencyBuckets: readonly number[] = DEFAULT_LATENCY_BUCKETS): string {
  return renderRules(buildRules(slo, latencyBuckets), slo);
}

/**
 * The `le` matcher of a bucket bound. Client libraries write `le="1"`; Prometheus 3 rewrites
 * whole numbers of classic histograms to `le="1.0"` on ingestion, so match both spellings.
 */
export function leMatcher(bound: number): string {
  const text = String(bound);
  return /^-?[0-9]+$/.test(text) ? `le=~"${text}|${text}\\\\.0"` : `le="${text}"`;
}

function ratio(numerator: string, denominator: string): string {
  return `${numerator}\n/\n${denominator}\n`;
}

function burnCondition(series: (window: string) => string, window: BurnWindow, budget: number): string {
  const threshold = `(${window.factor} * ${budget})`;
  return `${series(window.long)} > ${threshold}\nand\n${series(window.short)} > ${threshold}\n`;
}

function alert(
  slo: SloConfig,
  name: string,
  window: BurnWindow,
  spec: { expr: string; labels: Record<string, string>; summary: string; description: string },
): AlertingRule {
  const annotations: Record<string, string> = { summary: spec.summary, description: spec.description };
  if (slo.runbookUrl !== undefined) annotations['runbook_url'] = slo.runbookUrl;
  return {
    alert: name,
    expr: spec.expr,
    // Configured labels first: the SLO's own labels must not be overridden by them.
    labels: { ...slo.alertLabels, severity: window.severity, ...spec.labels },
    annotations,
  };
}

/** 1 - objective without float noise (1 - 0.999 is 0.0010000000000000009). */
function budgetOf(objective: number): number {
  return Number((1 - objective).toPrecision(12));
}

function percent(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(6))}%`;
}

function exhaustion(window: BurnWindow): string {
  const hours = (PERIOD_DAYS * 24) / window.factor;
  const when = hours < 72 ? `${Math.round(hours)} hours` : `${Math.round(hours / 24)} days`;
  return `at this rate the ${PERIOD_DAYS}-day budget is gone in about ${when}.`;
}
