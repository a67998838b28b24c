/**
 * Prometheus series for drift, one set per model version, updated once per judged window:
 *
 *   inferd_drift_score{model,version,feature,method}  the method's value (p-value or distance)
 *   inferd_drift_psi{model,version,feature}           PSI on the reference's quantile bins
 *   inferd_drift_feature_drifted{model,version,feature}  1 when the column's test flagged drift
 *   inferd_drift_detected{model,version}              1 on data-set drift
 *   inferd_drift_share{model,version}                 share of drifted input columns
 *   inferd_drift_severity{model,version}              0 none, 1 small, 2 moderate, 3 severe
 *   inferd_drift_window_rows{model,version}           rows in the last judged window
 *   inferd_drift_windows_total{model,version}         windows judged
 *   inferd_drift_actions_total{model,version,action,result}  webhook/command runs, ok/failed
 *   inferd_drift_captured_rows_total{model,version}   served rows handed to the window
 *   inferd_drift_capture_dropped_total{model,version,reason}  requests not captured (queue full, unreadable)
 *   inferd_drift_windows_dropped_total{model,version} windows closed while the previous was being judged
 *
 * Feature labels come from the reference profile; past MAX_FEATURE_SERIES columns only the
 * drifted ones get per-feature series, which bounds cardinality for wide inputs (images).
 */
import type { Registry } from 'prom-client';
import { CounterFamily, GaugeFamily } from '../observability/instruments.js';
import type { Severity } from './decision.js';
import type { DriftReport } from './drift.js';
import type { ActionOutcome } from './triggers.js';

export const MAX_FEATURE_SERIES = 100;
const SEVERITY_VALUE: Record<Severity, number> = { none: 0, small: 1, moderate: 2, severe: 3 };

export class DriftMetrics {
  private readonly score: GaugeFamily;
  private readonly psi: GaugeFamily;
  private readonly featureDrifted: GaugeFamily;
  private readonly detected: GaugeFamily;
  private readonly share: GaugeFamily;
  private readonly severity: GaugeFamily;
  private readonly windowRows: GaugeFamily;
  private readonly windows: CounterFamily;
  private readonly actions: CounterFamily;
  private readonly capturedRows: CounterFamily;
  private readonly captureDropped: CounterFamily;
  private readonly windowsDropped: CounterFamily;

  constructor(registry?: Registry) {
    const mv = ['model', 'version'];
    this.score = new GaugeFamily('inferd_drift_score', 'Drift score of a column in the last window: a p-value for ks/chisquare/z, a distance otherwise.', [...mv, 'feature', 'method'], registry);
    this.psi = new GaugeFamily('inferd_drift_psi', 'Population stability index of a column in the last window.', [...mv, 'feature'], registry);
    this.featureDrifted = new GaugeFamily('inferd_drift_feature_drifted', 'Whether the column drifted in the last window (1) or not (0).', [...mv, 'feature'], registry);
    this.detected = new GaugeFamily('inferd_drift_detected', 'Whether the last window showed data-set drift (1) or not (0).', mv, registry);
    this.share = new GaugeFamily('inferd_drift_share', 'Share of input columns that drifted in the last window.', mv, registry);
    this.severity = new GaugeFamily('inferd_drift_severity', 'Severity of the last drift decision: 0 none, 1 small, 2 moderate, 3 severe.', mv, registry);
    this.windowRows = new GaugeFamily('inferd_drift_window_rows', 'Rows in the last judged window.', mv, registry);
    this.windows = new CounterFamily('inferd_drift_windows_total', 'Windows judged for drift.', mv, registry);
    this.actions = new CounterFamily('inferd_drift_actions_total', 'Drift actions run, by kind and result.', [...mv, 'action', 'result'], registry);
    this.capturedRows = new CounterFamily('inferd_drift_captured_rows_total', 'Served rows handed to the drift window.', mv, registry);
    this.captureDropped = new CounterFamily('inferd_drift_capture_dropped_total', 'Served requests left out of drift capture, by reason (queue_full, unreadable).', [...mv, 'reason'], registry);
    this.windowsDropped = new CounterFamily('inferd_drift_windows_dropped_total', 'Drift windows dropped because the previous one was still being judged.', mv, registry);
  }

  record(model: string, version: string, report: DriftReport): void {
    const wide = report.columns.length > MAX_FEATURE_SERIES;
    // a method can change between windows: drop the version's old per-feature series first
    for (const family of [this.score, this.psi, this.featureDrifted]) family.removeWhere((l) => l['model'] === model && l['version'] === version);
    for (const c of report.columns) {
      if (wide && !c.drifted) continue;
      this.score.child(model, version, c.name, c.method).set(c.score);
      this.psi.child(model, version, c.name).set(c.psi);
      this.featureDrifted.child(model, version, c.name).set(c.drifted ? 1 : 0);
    }
    this.detected.child(model, version).set(report.dataset.drifted ? 1 : 0);
    this.share.child(model, version).set(report.dataset.share);
    this.severity.child(model, version).set(SEVERITY_VALUE[report.decision.severity]);
    this.windowRows.child(model, version).set(report.currentRows);
    this.windows.child(model, version).inc();
  }

  recordActions(model: string, version: string, outcomes: readonly ActionOutcome[]): void {
    for (const o of outcomes) this.actions.child(model, version, o.action, o.ok ? 'ok' : 'failed').inc();
  }

  captured(model: string, version: string, rows: number): void {
    this.capturedRows.child(model, version).inc(rows);
  }

  captureDrop(model: string, version: string, reason: 'queue_full' | 'unreadable'): void {
    this.captureDropped.child(model, version, reason).inc();
  }

  windowDropped(model: string, version: string): void {
    this.windowsDropped.child(model, version).inc();
  }

  /** Drops a version's series (it was unloaded). */
  forget(model: string, version: string): void {
    for (const family of [this.score, this.psi, this.featureDrifted, this.detected, this.share, this.severity, this.windowRows, this.windows, this.actions, this.capturedRows, this.captureDropped, this.windowsDropped]) {
      family.removeWhere((l) => l['model'] === model && l['version'] === version);
    }
  }
}
