/**
 * The Grafana dashboard of deploy/grafana/inferd-dashboard.json, generated from the SLO config
 * so that its burn-rate panels divide by the same budgets the alerts use.
 */
import { DEFAULT_SLO_CONFIG, type SloConfig } from './config.js';
import { BURN_WINDOWS, RECORDED } from './rules.js';

interface Target {
  refId: string;
  expr: string;
  legendFormat: string;
  datasource: typeof DATASOURCE;
}

export interface DashboardPanel {
  id: number;
  type: 'timeseries' | 'row';
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  description?: string;
  datasource?: typeof DATASOURCE;
  targets?: Target[];
  fieldConfig?: Record<string, unknown>;
  options?: Record<string, unknown>;
  collapsed?: boolean;
  panels?: DashboardPanel[];
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  schemaVersion: number;
  version: number;
  editable: boolean;
  graphTooltip: number;
  refresh: string;
  time: { from: string; to: string };
  timezone: string;
  annotations: { list: unknown[] };
  templating: { list: unknown[] };
  panels: DashboardPanel[];
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;
/** The model/version selector every inference query carries. */
const MV = 'model=~"$model", version=~"$version"';
const RATE = '$__rate_interval';

interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  queries: Array<[expr: string, legend: string]>;
  /** Horizontal threshold lines (burn-rate factors, objectives). */
  thresholds?: Array<{ value: number; color: string }>;
  stacking?: 'normal' | 'percent';
  min?: number;
  max?: number;
}

export function buildDashboard(slo: SloConfig = DEFAULT_SLO_CONFIG): GrafanaDashboard {
  const rows: Array<[title: string, panels: PanelSpec[]]> = [
    ['Traffic and errors', trafficPanels()],
    ['Latency', latencyPanels()],
    ['Batching and load', loadPanels()],
    ['Predictions', predictionPanels()],
    ['SLO burn rates', sloPanels(slo)],
    ['Process', processPanels()],
  ];

  const panels: DashboardPanel[] = [];
  let id = 1;
  let y = 0;
  for (const [title, specs] of rows) {
    panels.push({ id: id++, type: 'row', title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    specs.forEach((spec, i) => {
      panels.push(panel(id++, spec, { h: 8, w: 12, x: (i % 2) * 12, y: y + Math.floor(i / 2) * 8 }));
    });
    y += Math.ceil(specs.length / 2) * 8;
  }

  return {
    uid: 'inferd-overview',
    title: 'inferd',
    description: 'inferd model server: traffic, latency, batching, predictions and SLO burn rates.',
    tags: ['inferd', 'model-serving'],
    schemaVersion: 39,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    annotations: { list: [] },
    templating: {
      list: [
        { type: 'datasource', name: 'datasource', label: 'Data source', query: 'prometheus', current: {}, hide: 0 },
        labelVariable('model', 'Model', 'label_values(inferd_inference_requests_total, model)'),
        labelVariable('version', 'Version', 'label_values(inferd_inference_requests_total{model=~"$model"}, version)'),
      ],
    },
    panels,
  };
}

export function renderDashboard(slo: SloConfig = DEFAULT_SLO_CONFIG): string {
  return `${JSON.stringify(buildDashboard(slo), null, 2)}\n`;
}

/** Every PromQL expression of the dashboard, for checks against a real Prometheus. */
export function dashboardQueries(dashboard: GrafanaDashboard): Array<{ panel: string; expr: string }> {
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

function trafficPanels(): PanelSpec[] {
  return [
    {
      title: 'Inference rate',
      description: 'Finished inferences per second by model version and outcome.',
      unit: 'reqps',
      queries: [[`sum by (model, version, result) (rate(inferd_inference_requests_total{${MV}}[${RATE}]))`, '{{model}} v{{version}} {{result}}']],
    },
    {
      title: 'Error ratio',
      description: 'Fraction of inferences that failed (result="error").',
      unit: 'percentunit',
      min: 0,
      queries: [
        [
          `sum by (model, version) (rate(inferd_inference_requests_total{${MV}, result="error"}[${RATE}]))\n/\nsum by (model, version) (rate(inferd_inference_requests_total{${MV}}[${RATE}]))`,
          '{{model}} v{{version}}',
        ],
      ],
    },
    {
      title: 'Failures by reason',
      description: 'Failed inferences per second by reason (invalid_input, rejected, timeout, runtime_error...).',
      unit: 'reqps',
      stacking: 'normal',
      queries: [[`sum by (model, version, reason) (rate(inferd_inference_failures_total{${MV}}[${RATE}]))`, '{{model}} v{{version}} {{reason}}']],
    },
    {
      title: 'Front-door requests by status',
      description: 'Requests per second at the REST and gRPC doors by route template and status code.',
      unit: 'reqps',
      queries: [[`sum by (protocol, route, status_code) (rate(inferd_request_duration_seconds_count[${RATE}]))`, '{{protocol}} {{route}} {{status_code}}']],
    },
  ];
}

function latencyPanels(): PanelSpec[] {
  const quantile = (q: string): [string, string] => [
    `histogram_quantile(${q}, sum by (model, version, le) (rate(inferd_inference_duration_seconds_bucket{${MV}}[${RATE}])))`,
    `{{model}} v{{version}} p${q.slice(2).padEnd(2, '0')}`,
  ];
  return [
    {
      title: 'Inference latency p50 / p95 / p99',
      description: 'End-to-end inference latency inside the server, from the histogram (interpolated within buckets).',
      unit: 's',
      queries: [quantile('0.5'), quantile('0.95'), quantile('0.99')],
    },
    {
      title: 'Queue vs compute time (p95)',
      description: 'Where an inference spends its time: waiting for a batch and a worker, or in the runtime.',
      unit: 's',
      queries: [
        [`histogram_quantile(0.95, sum by (model, version, le) (rate(inferd_inference_queue_duration_seconds_bucket{${MV}}[${RATE}])))`, '{{model}} v{{version}} queue'],
        [`histogram_quantile(0.95, sum by (model, version, le) (rate(inferd_inference_compute_duration_seconds_bucket{${MV}}[${RATE}])))`, '{{model}} v{{version}} compute'],
      ],
    },
    {
      title: 'Front-door latency p95 by route',
      description: 'Request latency at the REST and gRPC doors, including decoding and encoding.',
      unit: 's',
      queries: [[`histogram_quantile(0.95, sum by (protocol, route, le) (rate(inferd_request_duration_seconds_bucket[${RATE}])))`, '{{protocol}} {{route}}']],
    },
    {
      title: 'Recorded p95 (5m)',
      description: 'The p95 recording rule, as the SLO rules see it.',
      unit: 's',
      queries: [[`${RECORDED.latencyQuantile('p95')}{${MV}}`, '{{model}} v{{version}}']],
    },
  ];
}

function loadPanels(): PanelSpec[] {
  return [
    {
      title: 'Batch size',
      description: 'Mean and p95 rows per batch run by the runtime.',
      unit: 'none',
      queries: [
        [`sum by (model, version) (rate(inferd_batch_size_sum{${MV}}[${RATE}]))\n/\nsum by (model, version) (rate(inferd_batch_size_count{${MV}}[${RATE}]))`, '{{model}} v{{version}} mean'],
        [`histogram_quantile(0.95, sum by (model, version, le) (rate(inferd_batch_size_bucket{${MV}}[${RATE}])))`, '{{model}} v{{version}} p95'],
      ],
    },
    {
      title: 'In flight and queued',
      description: 'Inferences accepted and not yet answered (per model), and waiting in the batch queue (per version).',
      unit: 'none',
      queries: [
        [`sum by (model) (inferd_inference_in_flight{model=~"$model"})`, '{{model}} in flight'],
        [`sum by (model, version) (inferd_inference_queue_size{${MV}})`, '{{model}} v{{version}} queued'],
      ],
    },
  ];
}

function predictionPanels(): PanelSpec[] {
  return [
    {
      title: 'Predicted class distribution',
      description: 'Share of each predicted class; a shift here without a shift in inputs is worth a look.',
      unit: 'percentunit',
      stacking: 'percent',
      queries: [[`sum by (model, version, class) (rate(inferd_prediction_class_total{${MV}}[${RATE}]))`, '{{model}} v{{version}} {{class}}']],
    },
    {
      title: 'Confidence (p10 / p50)',
      description: 'Top-class probability of classifications.',
      unit: 'percentunit',
      min: 0,
      max: 1,
      queries: [
        [`histogram_quantile(0.1, sum by (model, version, le) (rate(inferd_prediction_confidence_bucket{${MV}}[${RATE}])))`, '{{model}} v{{version}} p10'],
        [`histogram_quantile(0.5, sum by (model, version, le) (rate(inferd_prediction_confidence_bucket{${MV}}[${RATE}])))`, '{{model}} v{{version}} p50'],
      ],
    },
    {
      title: 'Low-confidence ratio',
      description: 'Fraction of classifications whose top-class probability is below the configured threshold.',
      unit: 'percentunit',
      min: 0,
      queries: [
        [
          `sum by (model, version) (rate(inferd_prediction_low_confidence_total{${MV}}[${RATE}]))\n/\nsum by (model, version) (rate(inferd_prediction_confidence_count{${MV}}[${RATE}]))`,
          '{{model}} v{{version}}',
        ],
      ],
    },
    {
      title: 'Regression output (p10 / p50 / p90)',
      description: 'Distribution of regression outputs, from the prediction value histogram.',
      unit: 'none',
      queries: ['0.1', '0.5', '0.9'].map((q): [string, string] => [
        `histogram_quantile(${q}, sum by (model, version, le) (rate(inferd_prediction_value_bucket{${MV}}[${RATE}])))`,
        `{{model}} v{{version}} p${Number(q) * 100}`,
      ]),
    },
    {
      title: 'Out-of-range inputs (top 10 features)',
      description: 'Input values outside the expected range of their feature, per second.',
      unit: 'short',
      queries: [[`topk(10, sum by (model, version, feature) (rate(inferd_input_out_of_range_total{${MV}}[${RATE}])))`, '{{model}} v{{version}} {{feature}}']],
    },
    {
      title: 'Model versions serving',
      description: 'Registered model versions and their platform.',
      unit: 'none',
      queries: [[`sum by (model, version, platform) (inferd_model_version_info{${MV}})`, '{{model}} v{{version}} ({{platform}})']],
    },
  ];
}

function sloPanels(slo: SloConfig): PanelSpec[] {
  const thresholds = [
    { value: 1, color: 'yellow' },
    { value: 6, color: 'orange' },
    { value: 14.4, color: 'red' },
  ];
  const windows = BURN_WINDOWS.map((w) => w.long);
  const panels: PanelSpec[] = [];
  if (slo.errors.enabled) {
    const budget = 1 - slo.errors.objective;
    panels.push({
      title: `Error budget burn rate (objective ${round(slo.errors.objective * 100)}%)`,
      description: 'Error ratio divided by the budget; alerts page above 14.4 (1h) or 6 (6h) and open a ticket above 1 (3d).',
      unit: 'none',
      thresholds,
      queries: windows.map((w) => [`${RECORDED.errorRatio(w)}{${MV}} / ${round(budget)}`, `{{model}} v{{version}} ${w}`]),
    });
  }
  for (const latency of slo.latency) {
    const threshold = String(latency.thresholdSeconds);
    panels.push({
      title: `Latency budget burn rate (${round(latency.objective * 100)}% within ${threshold}s)`,
      description: `Share of inferences slower than ${threshold}s divided by the budget.`,
      unit: 'none',
      thresholds,
      queries: windows.map((w) => [`(1 - ${RECORDED.latencyGoodRatio(w)}{${MV}, threshold="${threshold}"}) / ${round(1 - latency.objective)}`, `{{model}} v{{version}} ${w}`]),
    });
  }
  if (slo.availability.enabled) {
    panels.push({
      title: `Availability budget burn rate (objective ${round(slo.availability.objective * 100)}%)`,
      description: 'Share of failed scrapes divided by the budget.',
      unit: 'none',
      thresholds,
      queries: windows.map((w) => [`(1 - ${RECORDED.availabilityGoodRatio(w)}{job="${slo.availability.job}"}) / ${round(1 - slo.availability.objective)}`, `{{job}} ${w}`]),
    });
  }
  return panels;
}

function processPanels(): PanelSpec[] {
  return [
    {
      title: 'Event-loop lag',
      description: 'p99 and max delay of the main thread; a busy loop delays every request.',
      unit: 's',
      queries: [
        ['nodejs_eventloop_lag_p99_seconds', '{{instance}} p99'],
        ['nodejs_eventloop_lag_max_seconds', '{{instance}} max'],
      ],
    },
    {
      title: 'CPU and memory',
      description: 'Process CPU (cores) and resident memory.',
      unit: 'short',
      queries: [
        [`rate(process_cpu_seconds_total[${RATE}])`, '{{instance}} CPU cores'],
        ['process_resident_memory_bytes / 2^30', '{{instance}} RSS GiB'],
      ],
    },
  ];
}

function panel(id: number, spec: PanelSpec, gridPos: DashboardPanel['gridPos']): DashboardPanel {
  const defaults: Record<string, unknown> = {
    unit: spec.unit,
    custom: {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: spec.stacking === undefined ? 0 : 30,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: spec.stacking ?? 'none', group: 'A' },
      thresholdsStyle: { mode: spec.thresholds === undefined ? 'off' : 'line' },
    },
    thresholds: {
      mode: 'absolute',
      steps: [{ value: null, color: 'green' }, ...(spec.thresholds ?? [])],
    },
  };
  if (spec.min !== undefined) defaults['min'] = spec.min;
  if (spec.max !== undefined) defaults['max'] = spec.max;
  return {
    id,
    type: 'timeseries',
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: { defaults, overrides: [] },
    options: {
      legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull', 'max'] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
    targets: spec.queries.map(([expr, legendFormat], i) => ({ refId: String.fromCharCode(65 + i), expr, legendFormat, datasource: DATASOURCE })),
  };
}

function labelVariable(name: string, label: string, query: string): Record<string, unknown> {
  return {
    type: 'query',
    name,
    label,
    datasource: DATASOURCE,
    definition: query,
    query: { query, refId: `${name}-values` },
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: {},
    sort: 1,
    hide: 0,
  };
}

function round(value: number): number {
  return Number(value.toPrecision(12));
}
