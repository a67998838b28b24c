/**
 * The drift admin route:
 *
 *   GET /v2/admin/models/{m}/drift[?version=v]
 *
 * Per served version with a `drift:` section: whether it is watched (and why not), the open
 * window (rows seen, kept, limits), capture counts, and the last judged window: per feature the
 * method, score, p-value, threshold, PSI and whether it drifted; the data-set result; the
 * decision (severity, action). 404 for an unknown model, or one without drift monitoring.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InferdError, ModelNotFoundError } from '../../core/errors.js';
import type { DriftServing, VersionDrift } from '../../monitoring/serving.js';
import type { ServingPlane } from '../../pipeline/types.js';

type Req = FastifyRequest<{ Params: { model: string }; Querystring: { version?: string } }>;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A finite number, or null (JSON has no NaN or Infinity). */
function num(value: number | null): number | null {
  return value === null || !Number.isFinite(value) ? null : value;
}

export function versionDriftView(state: VersionDrift) {
  const m = state.monitor;
  const window = m?.window;
  const report = m?.report;
  const judged = m?.reportWindow;
  return {
    version: state.version.version,
    status: state.status,
    ...(state.reason !== undefined ? { reason: state.reason } : {}),
    ...(state.profileSource !== undefined ? { profile: state.profileSource } : {}),
    ...(window
      ? {
          window: {
            rows_seen: window.seen,
            rows_kept: window.kept,
            max_rows: window.maxRows,
            max_age_seconds: Number.isFinite(window.maxAgeMs) ? window.maxAgeMs / 1000 : null,
            capacity: window.capacity,
          },
          windows_judged: m!.judged,
          windows_dropped: m!.dropped,
        }
      : {}),
    ...(state.target ? { capture: { input: state.target.input, sample_rate: state.target.sampleRate, rows: state.target.capturedRows, dropped_requests: state.target.droppedRequests } } : {}),
    last: report
      ? {
          created_at: report.createdAt,
          ...(judged ? { started_at: iso(judged.startedAt), ended_at: iso(judged.endedAt), rows_seen: judged.seen, closed_by: judged.reason } : {}),
          rows: report.currentRows,
          reference_rows: report.referenceRows,
          dataset: {
            drifted: report.dataset.drifted,
            share: report.dataset.share,
            threshold: report.dataset.threshold,
            drifted_features: report.dataset.driftedColumns,
            inputs: report.dataset.inputs,
            correction: report.dataset.correction,
          },
          decision: {
            severity: report.decision.severity,
            action: report.decision.action,
            enough_data: report.decision.enoughData,
            psi: report.decision.psi,
            reasons: report.decision.reasons,
          },
          features: report.columns.map((c) => ({
            name: c.name,
            role: c.role,
            kind: c.kind,
            method: c.method,
            score: num(c.score),
            statistic: num(c.statistic),
            p_value: num(c.pValue),
            adjusted_p_value: num(c.adjustedPValue),
            threshold: c.threshold,
            drifted: c.drifted,
            psi: num(c.psi),
            severity: c.severity,
            missing: c.currentMissing,
          })),
        }
      : null,
  };
}

export function driftRoutes(drift: DriftServing): (app: FastifyInstance, plane: ServingPlane) => void {
  return (app, plane) => {
    app.get('/v2/admin/models/:model/drift', async (req: Req) => {
      const model = req.params.model;
      const wanted = req.query.version;
      return plane.control(req.ctx, { action: 'drift.read', write: false, model, ...(wanted !== undefined ? { version: wanted } : {}) }, async () => {
        drift.tick();
        const versions = drift.manager.serving.versionsOf(model);
        if (versions.length === 0) throw new ModelNotFoundError(model);
        if (!versions.some((v) => v.config.drift !== undefined)) {
          throw new InferdError('NOT_FOUND', `model '${model}' has no drift monitoring: add a drift: section to its config.yaml`);
        }
        const states = drift.versionsOf(model).filter((s) => wanted === undefined || s.version.version === wanted);
        if (wanted !== undefined && states.length === 0) throw new InferdError('NOT_FOUND', `model '${model}' has no served version ${wanted} with drift monitoring`);
        return { model, versions: states.map(versionDriftView) };
      });
    });
  };
}
