/**
 * The traffic admin API and the feedback endpoint as plain functions: each takes what the
 * route parsed (path parameters, query, JSON body, the caller) and returns a status and a JSON
 * body, so any front door can mount them.
 *
 *   GET  /v2/admin/traffic                              every model with a policy
 *   GET  /v2/admin/models/{m}/traffic                   policy, weights now, canary / blue-green state, shadow comparison, events
 *   PUT  /v2/admin/models/{m}/traffic                   {policy: {...} | null, expected_revision?}   set or remove
 *                                                       {action, reason?}   pause|resume|promote|promote_full|abort|switch|rollback
 *   GET  /v2/admin/models/{m}/analysis[?window=5m]      per-version error rate, success rate, p50/p95/p99 (Argo Rollouts web metric)
 *   GET  /v2/admin/experiments/{name}                   the A/B report and decision
 *   POST /v2/models/{m}/feedback                        {request_id, outcome? (number|boolean), label?, version?, variant?}
 *
 * Errors are `{"error": "..."}` with the status of the InferdError's code; a lost
 * compare-and-set is 409 with `current`, the revision now in force.
 */
import Type from 'typebox';
import { validate } from '../config/validate.js';
import { HTTP_STATUS, InferdError, toInferdError } from '../core/errors.js';
import { parseDuration, parseTrafficConfig, versionsOf } from './config.js';
import { analyseExperiment } from './experiment.js';
import { exactStatistics } from './exact-statistics.js';
import type { ExperimentStatistics } from './experiment-statistics.js';
import type { TrafficAction, TrafficService } from './service.js';
import type { WindowSummary } from './observations.js';
import { TrafficConflictError } from './store.js';

export interface AdminResult {
  status: number;
  body: unknown;
}

/** What the handlers may ask of the model manager, to refuse policies naming unknown versions. */
export interface ServedVersions {
  /** Versions of the model that exist (loaded or loadable); undefined when the model is unknown. */
  versions(model: string): readonly string[] | undefined;
}

export interface TrafficAdminDeps {
  traffic: TrafficService;
  served?: ServedVersions;
  statistics?: ExperimentStatistics;
}

const ACTIONS = ['pause', 'resume', 'promote', 'promote_full', 'abort', 'switch', 'rollback'] as const;

const PolicyBody = Type.Object(
  {
    policy: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    expected_revision: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

const ActionBody = Type.Object(
  {
    action: Type.Union(ACTIONS.map((a) => Type.Literal(a))),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

type PutRequest = { policy: Record<string, unknown> | null; expected_revision?: number } | { action: TrafficAction; reason?: string };

function parsePut(body: unknown): PutRequest {
  const shape = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  const usage = `give {"policy": {...} | null, "expected_revision"?: n} or {"action": "${ACTIONS.join('|')}", "reason"?: "..."}`;
  if (shape === undefined || ('policy' in shape) === ('action' in shape)) throw new InferdError('INVALID_ARGUMENT', `traffic request: ${usage}`);
  if ('action' in shape && !ACTIONS.includes(shape['action'] as TrafficAction)) {
    throw new InferdError('INVALID_ARGUMENT', `traffic request: unknown action '${String(shape['action'])}' (${ACTIONS.join(', ')})`);
  }
  if ('policy' in shape && (typeof shape['policy'] !== 'object' || Array.isArray(shape['policy']))) {
    throw new InferdError('INVALID_ARGUMENT', "traffic request: 'policy' must be an object (a traffic document) or null (remove)");
  }
  return 'action' in shape ? validate<PutRequest>(ActionBody, shape, 'traffic request') : validate<PutRequest>(PolicyBody, shape, 'traffic request');
}

const FeedbackBody = Type.Object(
  {
    request_id: Type.String({ minLength: 1, maxLength: 256 }),
    outcome: Type.Optional(Type.Union([Type.Number(), Type.Boolean()])),
    label: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Number()])),
    version: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })])),
    variant: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);

/** Runs a handler, turning thrown errors into their status and `{"error"}` body. */
async function answer(fn: () => Promise<AdminResult> | AdminResult): Promise<AdminResult> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof TrafficConflictError) return { status: 409, body: { error: error.message, current: error.current } };
    const e = toInferdError(error);
    return { status: HTTP_STATUS[e.code], body: { error: e.message } };
  }
}

function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

export function listTraffic(deps: TrafficAdminDeps): Promise<AdminResult> {
  return answer(() => ({
    status: 200,
    body: { models: deps.traffic.modelsWithPolicies().map((m) => ({ model: m, variants: deps.traffic.view(m)!.variants })), controller: deps.traffic.controller() },
  }));
}

export function getTraffic(deps: TrafficAdminDeps, model: string): Promise<AdminResult> {
  return answer(() => {
    const view = deps.traffic.view(model);
    if (view === undefined) throw new InferdError('NOT_FOUND', `model '${model}' has no traffic policy`);
    return { status: 200, body: view };
  });
}

export function putTraffic(deps: TrafficAdminDeps, model: string, body: unknown, actor = 'admin'): Promise<AdminResult> {
  return answer(async () => {
    const request = parsePut(body);
    if ('action' in request) return { status: 200, body: await deps.traffic.act(model, request.action, actor, request.reason) };
    if (request.policy !== null && deps.served !== undefined) {
      const known = deps.served.versions(model);
      if (known === undefined) throw new InferdError('NOT_FOUND', `model '${model}' is not served`);
      const missing = versionsOf(parseTrafficConfig(request.policy, model)).filter((v) => !known.includes(v));
      if (missing.length > 0) {
        throw new InferdError('FAILED_PRECONDITION', `model '${model}' has no version ${missing.join(', ')} (versions: ${known.join(', ') || 'none'}); load it first`);
      }
    }
    const view = await deps.traffic.setPolicy(model, request.policy, actor, request.expected_revision);
    return { status: 200, body: view ?? { model, policy: null } };
  });
}

/** Per-version observations over the last `window` (default 60 s), for Argo Rollouts' web metric provider. */
export function getAnalysis(deps: TrafficAdminDeps, model: string, query: { window?: string; version?: string } = {}): Promise<AdminResult> {
  return answer(() => {
    const windowMs = query.window === undefined ? 60_000 : parseDuration(query.window, 'window');
    if (windowMs <= 0) throw new InferdError('INVALID_ARGUMENT', 'window must be longer than 0');
    const now = deps.traffic.now();
    const policy = deps.traffic.policyOf(model);
    const candidates = new Set<string>(policy === undefined ? [] : versionsOf(policy));
    for (const v of deps.served?.versions(model) ?? []) candidates.add(v);
    if (query.version !== undefined) {
      candidates.clear();
      candidates.add(query.version);
    }
    const describe = (s: WindowSummary) => ({
      requests: s.requests,
      errors: s.errors,
      error_rate: finite(s.errorRate),
      success_rate: finite(1 - s.errorRate),
      p50_ms: finite(s.p50Ms),
      p95_ms: finite(s.p95Ms),
      p99_ms: finite(s.p99Ms),
      quality: finite(s.quality),
      quality_samples: s.qualitySamples,
    });
    const versions: Record<string, unknown> = {};
    for (const v of [...candidates].sort()) versions[v] = describe(deps.traffic.observations.summary(model, v, now - windowMs, now + 1));
    const totals =
      query.version !== undefined
        ? deps.traffic.observations.summary(model, query.version, now - windowMs, now + 1)
        : deps.traffic.observations.summaryOfModel(model, now - windowMs, now + 1);
    const canary = deps.traffic.view(model)?.canary;
    return {
      status: 200,
      body: {
        model,
        window_seconds: windowMs / 1000,
        totals: describe(totals),
        versions,
        ...(canary !== undefined ? { canary: { phase: canary.phase, weight: canary.weight, last: canary.measurements[canary.measurements.length - 1] ?? null } } : {}),
      },
    };
  });
}

export function getExperiment(deps: TrafficAdminDeps, name: string): Promise<AdminResult> {
  return answer(async () => {
    const t = deps.traffic;
    for (const model of t.modelsWithPolicies()) {
      const r = t.policyOf(model)?.routing;
      if (r?.kind !== 'split' || r.experiment === undefined || r.experiment.name !== name) continue;
      const store = t.store;
      if (store === undefined) throw new InferdError('UNAVAILABLE', 'experiments need the registry database for their feedback; configure a registry');
      await t.flush();
      // A policy set at run time records its start; a configured one started with its first request.
      const startedAt = t.startedAt(model) ?? (await store.firstAssignmentAt(model));
      const outcomes = await store.outcomes(model, startedAt ?? 0);
      const report = analyseExperiment(model, { ...r, experiment: r.experiment }, outcomes, deps.statistics ?? exactStatistics, { startedAt, now: t.now() });
      return { status: 200, body: report };
    }
    throw new InferdError('NOT_FOUND', `no split policy runs an experiment named '${name}'`);
  });
}

/** `POST /v2/models/{m}/feedback`: an observed outcome or label for a request, joined to the variant that served it. */
export function postFeedback(deps: TrafficAdminDeps, model: string, body: unknown): Promise<AdminResult> {
  return answer(async () => {
    const f = validate<{ request_id: string; outcome?: number | boolean; label?: string | number; version?: string | number; variant?: string }>(FeedbackBody, body, 'feedback');
    if (f.outcome === undefined && f.label === undefined) throw new InferdError('INVALID_ARGUMENT', "feedback: give 'outcome' (a number or true/false) or 'label'");
    const outcome = f.outcome === undefined ? null : typeof f.outcome === 'boolean' ? (f.outcome ? 1 : 0) : f.outcome;
    if (outcome !== null && !Number.isFinite(outcome)) throw new InferdError('INVALID_ARGUMENT', "feedback: 'outcome' must be a finite number");
    const t = deps.traffic;
    const served = await t.assignmentOf(f.request_id);
    if (served !== undefined && served.model !== model) {
      throw new InferdError('INVALID_ARGUMENT', `request '${f.request_id}' was served by model '${served.model}', not '${model}'`);
    }
    const version = served?.version ?? (f.version === undefined ? undefined : String(f.version));
    if (version === undefined) {
      throw new InferdError('NOT_FOUND', `request '${f.request_id}' is not known to have been served by model '${model}'; give 'version' (and 'variant') to record it anyway`);
    }
    const record = {
      requestId: f.request_id,
      model,
      version,
      variant: served?.variant ?? f.variant ?? `v${version}`,
      at: served?.at ?? t.now(),
      outcome,
      label: f.label === undefined ? null : String(f.label),
      receivedAt: t.now(),
    };
    if (outcome !== null) t.observeOutcome(model, version, outcome, record.receivedAt);
    if (t.store !== undefined) await t.store.recordFeedback(record);
    return { status: 200, body: { request_id: record.requestId, model, version, variant: record.variant, outcome, label: record.label, stored: t.store !== undefined } };
  });
}
