/**
 * Drift settings of a served model, shaped for a `drift:` key in the model's config.yaml:
 *
 *   drift:
 *     reference: data/train.csv                            # profiled at load (else the registry profile)
 *     exclude: [label]                                     # reference columns that are not features
 *     outputs: [label]                                     # reference columns holding model outputs
 *     input: features                                      # the input the features belong to
 *     sample_rate: 1                                       # share of served requests captured
 *     window: { max_rows: 10000, max_age_seconds: 3600 }    # tumbling; capacity defaults to max_rows
 *     method: ks                                           # all columns (default: by type and size)
 *     methods: { mean_area: psi }                          # per column
 *     thresholds: { ks: 0.01 }                             # per method
 *     column_thresholds: { mean_area: 0.2 }
 *     dataset_threshold: 0.5
 *     correction: fdr_bh                                   # none | bonferroni | fdr_bh
 *     min_rows: 100                                        # fewer rows in a window: no decision
 *     severity: { psi: { small: 0.1, moderate: 0.15, severe: 0.25 } }
 *     min_severity: small                                  # lowest severity that fires actions
 *     actions:
 *       - { webhook: https://ci.example/hooks/retrain, secret_env: RETRAIN_HOOK_SECRET }
 *       - { command: ./scripts/open-ticket.sh, timeout_ms: 30000 }
 *
 * A webhook's HMAC key is read from the environment variable named by `secret_env`, never written
 * in the file.
 */
import Type, { type Static } from 'typebox';
import { ConfigError, validate } from '../config/validate.js';
import { DEFAULT_POLICY, type Severity, type SeverityPolicy } from './decision.js';
import { DRIFT_METHODS, type DriftMethod, type DriftOptions } from './drift.js';
import type { TriggerAction } from './triggers.js';

const Method = Type.Union(DRIFT_METHODS.map((m) => Type.Literal(m)));
const Tiers = Type.Object(
  { small: Type.Number({ minimum: 0 }), moderate: Type.Number({ minimum: 0 }), severe: Type.Number({ minimum: 0 }) },
  { additionalProperties: false },
);
const SeverityName = Type.Union([Type.Literal('small'), Type.Literal('moderate'), Type.Literal('severe')]);

const WebhookSchema = Type.Object(
  {
    webhook: Type.String({ minLength: 1 }),
    secret_env: Type.Optional(Type.String({ minLength: 1 })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    initial_delay_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    max_delay_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
const CommandSchema = Type.Object(
  { command: Type.String({ minLength: 1 }), timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);

export const DriftConfigSchema = Type.Object(
  {
    /** Reference data (CSV or JSONL, relative to the model's directory) profiled when a version loads. */
    reference: Type.Optional(Type.String({ minLength: 1 })),
    exclude: Type.Array(Type.String(), { default: [] }),
    outputs: Type.Array(Type.String(), { default: [] }),
    input: Type.Optional(Type.String({ minLength: 1 })),
    sample_rate: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1 }),
    window: Type.Object(
      {
        max_rows: Type.Integer({ minimum: 1, default: 10000 }),
        max_age_seconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
        capacity: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000 })),
      },
      { additionalProperties: false, default: { max_rows: 10000 } },
    ),
    method: Type.Optional(Method),
    methods: Type.Record(Type.String(), Method, { default: {} }),
    thresholds: Type.Record(Type.String(), Type.Number({ exclusiveMinimum: 0 }), { default: {} }),
    column_thresholds: Type.Record(Type.String(), Type.Number({ exclusiveMinimum: 0 }), { default: {} }),
    dataset_threshold: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5 }),
    correction: Type.Union([Type.Literal('none'), Type.Literal('bonferroni'), Type.Literal('fdr_bh')], { default: 'none' }),
    min_rows: Type.Integer({ minimum: 1, default: DEFAULT_POLICY.minRows }),
    severity: Type.Object({ psi: Type.Optional(Tiers), accuracy_drop: Type.Optional(Tiers) }, { additionalProperties: false, default: {} }),
    min_severity: Type.Union([SeverityName], { default: 'small' }),
    actions: Type.Array(Type.Union([WebhookSchema, CommandSchema]), { default: [] }),
  },
  { additionalProperties: false },
);

export type DriftConfig = Static<typeof DriftConfigSchema>;

export interface DriftSettings {
  window: { maxRows: number; maxAgeMs?: number; capacity?: number };
  options: DriftOptions;
  actions: TriggerAction[];
  minSeverity: Severity;
}

export function parseDriftConfig(raw: unknown, where: string): DriftConfig {
  return validate<DriftConfig>(DriftConfigSchema, raw, where);
}

/** Turns a validated `drift:` section into window options, drift options and trigger actions. */
export function driftSettings(config: DriftConfig, where: string, env: NodeJS.ProcessEnv = process.env): DriftSettings {
  for (const key of Object.keys(config.thresholds)) {
    if (!(DRIFT_METHODS as readonly string[]).includes(key)) throw new ConfigError(`${where}: drift.thresholds has '${key}', not a method (${DRIFT_METHODS.join(', ')})`);
  }
  const checkTiers = (name: string, t: { small: number; moderate: number; severe: number } | undefined): void => {
    if (t && !(t.small <= t.moderate && t.moderate <= t.severe)) throw new ConfigError(`${where}: drift.severity.${name} must have small ≤ moderate ≤ severe`);
  };
  checkTiers('psi', config.severity.psi);
  checkTiers('accuracy_drop', config.severity.accuracy_drop);
  const policy: SeverityPolicy = {
    ...DEFAULT_POLICY,
    psi: config.severity.psi ?? DEFAULT_POLICY.psi,
    accuracyDrop: config.severity.accuracy_drop ?? DEFAULT_POLICY.accuracyDrop,
    minRows: config.min_rows,
  };
  const actions = config.actions.map((a, i): TriggerAction => {
    if ('command' in a) return { kind: 'command', command: a.command, ...(a.timeout_ms !== undefined ? { timeoutMs: a.timeout_ms } : {}) };
    let url: URL;
    try {
      url = new URL(a.webhook);
    } catch {
      throw new ConfigError(`${where}: drift.actions[${i}].webhook '${a.webhook}' is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${where}: drift.actions[${i}].webhook must be http or https`);
    let secret: string | undefined;
    if (a.secret_env !== undefined) {
      secret = env[a.secret_env];
      if (secret === undefined || secret === '') throw new ConfigError(`${where}: drift.actions[${i}].secret_env names ${a.secret_env}, which is not set`);
    }
    return {
      kind: 'webhook',
      url: a.webhook,
      ...(secret !== undefined ? { secret } : {}),
      ...(a.headers ? { headers: a.headers } : {}),
      ...(a.attempts !== undefined ? { attempts: a.attempts } : {}),
      ...(a.initial_delay_ms !== undefined ? { initialDelayMs: a.initial_delay_ms } : {}),
      ...(a.max_delay_ms !== undefined ? { maxDelayMs: a.max_delay_ms } : {}),
      ...(a.timeout_ms !== undefined ? { timeoutMs: a.timeout_ms } : {}),
    };
  });
  return {
    window: {
      maxRows: config.window.max_rows,
      ...(config.window.max_age_seconds !== undefined ? { maxAgeMs: config.window.max_age_seconds * 1000 } : {}),
      ...(config.window.capacity !== undefined ? { capacity: config.window.capacity } : {}),
    },
    options: {
      ...(config.method ? { method: config.method } : {}),
      methods: config.methods as Record<string, DriftMethod>,
      thresholds: config.thresholds as Partial<Record<DriftMethod, number>>,
      columnThresholds: config.column_thresholds,
      datasetThreshold: config.dataset_threshold,
      correction: config.correction,
      policy,
    },
    actions,
    minSeverity: config.min_severity,
  };
}
