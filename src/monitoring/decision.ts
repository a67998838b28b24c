/**
 * From a drift report to a decision: a severity tier and the action the policy attaches to it.
 *
 * Default policy (the tiers of the retraining guide):
 *   small     PSI 0.10-0.15 or accuracy drop < 2 points  → automated retraining
 *   moderate  PSI 0.15-0.25 or accuracy drop 2-5 points  → human review
 *   severe    PSI > 0.25    or accuracy drop > 5 points  → emergency
 * The PSI that counts is the largest among the columns whose own test flagged drift, so a noisy
 * PSI on a column its test calls stable does not raise an alarm by itself. A data-set drift
 * with no PSI tier reached is reported as `small`. An accuracy drop below `minAccuracyDrop`
 * (default 1 point) is noise. Below `minRows` current rows nothing is decided (minimum-data rule).
 */
export type Severity = 'none' | 'small' | 'moderate' | 'severe';
export type DriftAction = 'none' | 'retrain' | 'review' | 'emergency';

export interface SeverityPolicy {
  psi: { small: number; moderate: number; severe: number };
  accuracyDrop: { small: number; moderate: number; severe: number };
  actions: Record<Severity, DriftAction>;
  /** Fewest current rows for a decision. */
  minRows: number;
}

export const DEFAULT_POLICY: SeverityPolicy = {
  psi: { small: 0.1, moderate: 0.15, severe: 0.25 },
  accuracyDrop: { small: 0.01, moderate: 0.02, severe: 0.05 },
  actions: { none: 'none', small: 'retrain', moderate: 'review', severe: 'emergency' },
  minRows: 100,
};

const ORDER: readonly Severity[] = ['none', 'small', 'moderate', 'severe'];

export function maxSeverity(a: Severity, b: Severity): Severity {
  return ORDER.indexOf(a) >= ORDER.indexOf(b) ? a : b;
}

function tier(value: number, t: { small: number; moderate: number; severe: number }, severeInclusive: boolean): Severity {
  if (severeInclusive ? value >= t.severe : value > t.severe) return 'severe';
  if (value >= t.moderate) return 'moderate';
  if (value >= t.small) return 'small';
  return 'none';
}

export function severityFromPsi(psi: number, policy: SeverityPolicy = DEFAULT_POLICY): Severity {
  return tier(psi, policy.psi, false);
}

export function severityFromAccuracyDrop(drop: number, policy: SeverityPolicy = DEFAULT_POLICY): Severity {
  return tier(drop, policy.accuracyDrop, false);
}

export interface Decision {
  severity: Severity;
  action: DriftAction;
  /** False when the minimum-data rule held the decision back. */
  enoughData: boolean;
  datasetDrift: boolean;
  driftedColumns: string[];
  /** Largest PSI among drifted columns (0 when none). */
  psi: number;
  accuracyDrop?: number;
  reasons: string[];
  /** Same key, same decision: triggers fire once per key, not once per window. */
  key: string;
}

export interface DecisionInput {
  columns: ReadonlyArray<{ name: string; role: string; drifted: boolean; psi: number }>;
  dataset: { drifted: boolean; share: number; threshold: number };
  currentRows: number;
  policy: SeverityPolicy;
  accuracyDrop?: number;
}

export function decide(input: DecisionInput): Decision {
  const { policy } = input;
  const drifted = input.columns.filter((c) => c.drifted && c.role === 'input');
  const reasons: string[] = [];
  if (input.currentRows < policy.minRows) {
    return {
      severity: 'none',
      action: 'none',
      enoughData: false,
      datasetDrift: input.dataset.drifted,
      driftedColumns: drifted.map((c) => c.name),
      psi: 0,
      reasons: [`${input.currentRows} rows, fewer than the ${policy.minRows} needed for a decision`],
      key: 'insufficient-data',
    };
  }
  const psi = drifted.reduce((m, c) => Math.max(m, c.psi), 0);
  let severity = severityFromPsi(psi, policy);
  if (severity !== 'none') {
    const top = drifted.reduce((a, b) => (b.psi > a.psi ? b : a));
    reasons.push(`PSI ${psi.toFixed(3)} on '${top.name}' (${severity})`);
  }
  if (input.dataset.drifted) {
    reasons.push(`${drifted.length} of ${input.columns.filter((c) => c.role === 'input').length} input columns drifted (share ${input.dataset.share.toFixed(2)} ≥ ${input.dataset.threshold})`);
    severity = maxSeverity(severity, 'small');
  }
  if (input.accuracyDrop !== undefined) {
    const accuracy = severityFromAccuracyDrop(input.accuracyDrop, policy);
    if (accuracy !== 'none') reasons.push(`accuracy dropped ${(input.accuracyDrop * 100).toFixed(1)} points (${accuracy})`);
    severity = maxSeverity(severity, accuracy);
  }
  const names = drifted.map((c) => c.name).sort();
  return {
    severity,
    action: policy.actions[severity],
    enoughData: true,
    datasetDrift: input.dataset.drifted,
    driftedColumns: names,
    psi,
    ...(input.accuracyDrop !== undefined ? { accuracyDrop: input.accuracyDrop } : {}),
    reasons,
    key: `${severity}:${input.dataset.drifted ? 'dataset-drift' : 'no-dataset-drift'}`,
  };
}
