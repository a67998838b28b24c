/**
 * The `traffic:` key of a served model: how requests that name no version are spread over the
 * model's versions. One routing kind (split, canary or blue_green) and, independently, a shadow
 * mirror:
 *
 *   traffic:
 *     split:
 *       variants:
 *         - { name: control, version: 1, weight: 50 }
 *         - { name: treatment, version: 2, weight: 50 }
 *       sticky: { header: x-user-id }          # or { parameter: user_id }; random without a key
 *       experiment: { metric: binary, baseline_rate: 0.03, mde: 0.2, relative: true }
 *     canary:
 *       baseline: 1
 *       canary: 2
 *       steps: [{ weight: 5, pause: 15m }, { weight: 25, pause: 30m }, { weight: 50, pause: 1h }, { weight: 100 }]
 *       analysis: { interval: 1m, failure_limit: 1, max_error_rate: 0.02, max_p99_ms: 800 }
 *     blue_green: { active: 1, standby: 2, keep_warm: 10m }
 *     shadow: { version: 3, percent: 10 }
 *
 * Durations are seconds (a number) or text with a unit: `500ms`, `30s`, `15m`, `1h`.
 */
import Type, { type Static } from 'typebox';
import { ConfigError, validate } from '../config/validate.js';

const Version = Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })]);
const Duration = Type.Union([Type.String({ minLength: 1 }), Type.Number({ minimum: 0 })]);

const StickySchema = Type.Object(
  {
    /** A request header, or gRPC metadata key (lower case). */
    header: Type.Optional(Type.String({ minLength: 1 })),
    /** A request parameter (`parameters` of the inference request). */
    parameter: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

const ExperimentSchema = Type.Object(
  {
    /** Name used by `GET /v2/admin/experiments/{name}`; default the model's name. */
    name: Type.Optional(Type.String({ minLength: 1 })),
    /** binary: outcome 0/1 (conversion); continuous: a number per request (revenue, error). */
    metric: Type.Union([Type.Literal('binary'), Type.Literal('continuous')], { default: 'binary' }),
    /** The variant the others are compared with; default the first. */
    control: Type.Optional(Type.String({ minLength: 1 })),
    alpha: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.05 }),
    power: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.8 }),
    /** Expected rate of the control (binary metric); with `mde` it gives the sample size. */
    baseline_rate: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
    /** Minimum detectable effect: relative lift (0.2 = +20%) when `relative`, else absolute. */
    mde: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    relative: Type.Boolean({ default: true }),
    /** Requests per day, for the minimum duration max(sample / daily, 14 days). */
    daily_traffic: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    min_days: Type.Number({ minimum: 0, default: 14 }),
  },
  { additionalProperties: false },
);

const SplitSchema = Type.Object(
  {
    variants: Type.Array(
      Type.Object(
        {
          name: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' })),
          version: Version,
          weight: Type.Number({ minimum: 0, maximum: 100 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
    sticky: Type.Optional(StickySchema),
    experiment: Type.Optional(ExperimentSchema),
  },
  { additionalProperties: false },
);

const AnalysisSchema = Type.Object(
  {
    /** How often canary and baseline are measured (one measurement per interval). */
    interval: Type.Optional(Duration),
    /** Fewer canary requests than this in an interval make the measurement inconclusive. */
    min_requests: Type.Integer({ minimum: 1, default: 20 }),
    /** Argo Rollouts: failed measurements tolerated; one more rolls back. */
    failure_limit: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Flagger: failed checks before rollback (failure_limit + 1). Give one of the two. */
    threshold: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Argo Rollouts: inconclusive measurements tolerated; one more pauses the canary. */
    inconclusive_limit: Type.Integer({ minimum: 0, default: 2 }),
    /** Argo Rollouts: measurements that could not be taken, in a row, tolerated; one more rolls back. */
    consecutive_error_limit: Type.Integer({ minimum: 0, default: 4 }),
    /** Canary errors / requests must not exceed this (Flagger's request-success-rate, inverted). */
    max_error_rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Same check written as Flagger writes it: success rate at least this. */
    min_success_rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Canary error rate minus baseline error rate must not exceed this. */
    max_error_rate_increase: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    max_p95_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    max_p99_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** Canary p95 / baseline p95 must not exceed this (needs baseline requests in the interval). */
    max_latency_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** Mean feedback outcome of the canary (accuracy, conversion...) must be at least this. */
    min_quality: Type.Optional(Type.Number()),
    /** Feedback outcomes needed in an interval for the quality check; fewer leave it out. */
    min_quality_samples: Type.Integer({ minimum: 1, default: 20 }),
  },
  { additionalProperties: false },
);

const CanarySchema = Type.Object(
  {
    baseline: Version,
    canary: Version,
    /** Explicit steps (Argo Rollouts' setWeight + pause), ending at 100 or not (then promote by hand). */
    steps: Type.Optional(
      Type.Array(Type.Object({ weight: Type.Number({ minimum: 0, maximum: 100 }), pause: Type.Optional(Duration) }, { additionalProperties: false }), {
        minItems: 1,
      }),
    ),
    /** Flagger's form: grow by step_weight every interval up to max_weight, then promote. */
    step_weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })),
    max_weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })),
    analysis: Type.Optional(AnalysisSchema),
    sticky: Type.Optional(StickySchema),
  },
  { additionalProperties: false },
);

const BlueGreenSchema = Type.Object(
  {
    active: Version,
    standby: Version,
    /** How long the version switched away from stays loaded for an instant rollback. */
    keep_warm: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

const ShadowSchema = Type.Object(
  {
    version: Version,
    percent: Type.Number({ minimum: 0, maximum: 100 }),
    /** Mirrored requests waiting; beyond it new ones are dropped, never waited for. */
    queue_size: Type.Integer({ minimum: 1, maximum: 100_000, default: 256 }),
    /** Mirrored requests running at once. */
    concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 2 }),
    /** A shadow call taking longer is abandoned and counted as a timeout. */
    timeout: Type.Optional(Duration),
    /**
     * Mirrored requests are gathered this long and run as one batch (rows concatenated), so the
     * shadow costs one call per window instead of one per request; 0 runs each on its own.
     */
    batch_window: Type.Optional(Duration),
    /** Most requests in one shadow batch. */
    max_batch: Type.Integer({ minimum: 1, maximum: 1024, default: 64 }),
    /** auto: labels for integer/text outputs, errors for floats; argmax: compare each row's top class. */
    compare: Type.Union([Type.Literal('auto'), Type.Literal('argmax')], { default: 'auto' }),
    /**
     * Nice value of the shadow version's worker threads while it is a shadow (Linux), so the
     * operating system runs the callers' threads first when cores are contended. Default 10;
     * 0 runs them at the server's own priority.
     */
    nice: Type.Optional(Type.Integer({ minimum: 0, maximum: 19 })),
  },
  { additionalProperties: false },
);

export const TrafficConfigSchema = Type.Object(
  {
    split: Type.Optional(SplitSchema),
    canary: Type.Optional(CanarySchema),
    blue_green: Type.Optional(BlueGreenSchema),
    shadow: Type.Optional(ShadowSchema),
  },
  { additionalProperties: false },
);

export type TrafficConfig = Static<typeof TrafficConfigSchema>;

// ---- the checked, normalised form ----

export interface StickyKey {
  header?: string;
  parameter?: string;
}

export interface Variant {
  name: string;
  version: string;
  /** Percent, 0..100; the weights of a split sum to 100. */
  weight: number;
}

export interface ExperimentConfig {
  name: string;
  metric: 'binary' | 'continuous';
  control: string;
  alpha: number;
  power: number;
  baselineRate?: number;
  mde?: number;
  relative: boolean;
  dailyTraffic?: number;
  minDays: number;
}

export interface SplitPolicy {
  kind: 'split';
  variants: Variant[];
  sticky?: StickyKey;
  experiment?: ExperimentConfig;
}

export interface CanaryStep {
  weight: number;
  pauseMs: number;
}

export interface AnalysisConfig {
  intervalMs: number;
  minRequests: number;
  failureLimit: number;
  inconclusiveLimit: number;
  consecutiveErrorLimit: number;
  maxErrorRate?: number;
  maxErrorRateIncrease?: number;
  maxP95Ms?: number;
  maxP99Ms?: number;
  maxLatencyRatio?: number;
  minQuality?: number;
  minQualitySamples: number;
}

export interface CanaryPolicy {
  kind: 'canary';
  baseline: string;
  canary: string;
  steps: CanaryStep[];
  analysis: AnalysisConfig;
  sticky?: StickyKey;
}

export interface BlueGreenPolicy {
  kind: 'blue_green';
  active: string;
  standby: string;
  keepWarmMs: number;
}

export interface ShadowPolicy {
  version: string;
  percent: number;
  queueSize: number;
  concurrency: number;
  timeoutMs: number;
  batchWindowMs: number;
  maxBatch: number;
  compare: 'auto' | 'argmax';
  /** Nice value of the shadow version's worker threads; 0: not lowered. */
  nice: number;
}

export type RoutingPolicy = SplitPolicy | CanaryPolicy | BlueGreenPolicy;

export interface TrafficPolicy {
  routing?: RoutingPolicy;
  shadow?: ShadowPolicy;
}

/** The guide's progression: 5% → 25% → 50% → 100% with 15, 30 and 60 minute pauses. */
export const DEFAULT_CANARY_STEPS: readonly CanaryStep[] = [
  { weight: 5, pauseMs: 15 * 60_000 },
  { weight: 25, pauseMs: 30 * 60_000 },
  { weight: 50, pauseMs: 60 * 60_000 },
  { weight: 100, pauseMs: 0 },
];

export const DEFAULT_ANALYSIS_INTERVAL_MS = 60_000;
export const DEFAULT_KEEP_WARM_MS = 10 * 60_000;
export const DEFAULT_SHADOW_TIMEOUT_MS = 5000;
export const DEFAULT_SHADOW_BATCH_WINDOW_MS = 20;
export const DEFAULT_SHADOW_NICE = 10;
/** Default ceiling on the canary's error rate when no error check is configured. */
export const DEFAULT_MAX_ERROR_RATE = 0.05;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `15m`, `1h`, `2d`, or a number of seconds, to milliseconds. */
export function parseDuration(value: string | number, where: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${where}: a duration must be a non-negative number of seconds`);
    return Math.round(value * 1000);
  }
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (match === null) throw new ConfigError(`${where}: '${value}' is not a duration (e.g. 500ms, 30s, 15m, 1h)`);
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 's']!);
}

/** Milliseconds as the shortest exact text (`90s`, `15m`). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function version(value: string | number): string {
  return String(value);
}

function checkSticky(sticky: StickyKey | undefined, where: string): StickyKey | undefined {
  if (sticky === undefined) return undefined;
  if ((sticky.header === undefined) === (sticky.parameter === undefined)) {
    throw new ConfigError(`${where}.sticky: give exactly one of 'header' (header or gRPC metadata key) or 'parameter' (request parameter)`);
  }
  return sticky.header !== undefined ? { header: sticky.header.toLowerCase() } : { parameter: sticky.parameter! };
}

function parseSplit(raw: NonNullable<TrafficConfig['split']>, model: string, where: string): SplitPolicy {
  const names = new Set<string>();
  const versions = new Set<string>();
  const variants = raw.variants.map((v, i) => {
    const name = v.name ?? `v${version(v.version)}`;
    if (versions.has(version(v.version))) throw new ConfigError(`${where}.split.variants[${i}]: version ${version(v.version)} appears in two variants`);
    if (names.has(name)) throw new ConfigError(`${where}.split.variants[${i}]: the variant name '${name}' is used twice`);
    names.add(name);
    versions.add(version(v.version));
    return { name, version: version(v.version), weight: v.weight };
  });
  const total = variants.reduce((sum, v) => sum + v.weight, 0);
  if (Math.abs(total - 100) > 1e-9) {
    throw new ConfigError(`${where}.split: the variant weights sum to ${total}, not 100 (${variants.map((v) => `${v.name}=${v.weight}`).join(', ')})`);
  }
  const policy: SplitPolicy = { kind: 'split', variants };
  const sticky = checkSticky(raw.sticky, `${where}.split`);
  if (sticky !== undefined) policy.sticky = sticky;
  if (raw.experiment !== undefined) {
    const e = raw.experiment;
    const control = e.control ?? variants[0]!.name;
    if (!names.has(control)) throw new ConfigError(`${where}.split.experiment.control: '${control}' is not a variant (${[...names].join(', ')})`);
    if (variants.length < 2) throw new ConfigError(`${where}.split.experiment: an experiment needs at least two variants`);
    if (e.metric === 'binary' && e.mde !== undefined && e.baseline_rate === undefined) {
      throw new ConfigError(`${where}.split.experiment: 'mde' needs 'baseline_rate' to size a binary experiment`);
    }
    policy.experiment = {
      name: e.name ?? model,
      metric: e.metric,
      control,
      alpha: e.alpha,
      power: e.power,
      relative: e.relative,
      minDays: e.min_days,
      ...(e.baseline_rate !== undefined ? { baselineRate: e.baseline_rate } : {}),
      ...(e.mde !== undefined ? { mde: e.mde } : {}),
      ...(e.daily_traffic !== undefined ? { dailyTraffic: e.daily_traffic } : {}),
    };
  }
  return policy;
}

function parseAnalysis(raw: Static<typeof AnalysisSchema> | undefined, where: string): AnalysisConfig {
  const a = validate<Static<typeof AnalysisSchema>>(AnalysisSchema, raw ?? {}, where);
  if (a.failure_limit !== undefined && a.threshold !== undefined) {
    throw new ConfigError(`${where}: give 'failure_limit' (failures tolerated, Argo Rollouts) or 'threshold' (failures that roll back, Flagger), not both`);
  }
  if (a.max_error_rate !== undefined && a.min_success_rate !== undefined) {
    throw new ConfigError(`${where}: 'max_error_rate' and 'min_success_rate' say the same thing; give one`);
  }
  const intervalMs = a.interval === undefined ? DEFAULT_ANALYSIS_INTERVAL_MS : parseDuration(a.interval, `${where}.interval`);
  if (intervalMs < 100) throw new ConfigError(`${where}.interval: must be at least 100ms`);
  const config: AnalysisConfig = {
    intervalMs,
    minRequests: a.min_requests,
    failureLimit: a.failure_limit ?? (a.threshold !== undefined ? a.threshold - 1 : 0),
    inconclusiveLimit: a.inconclusive_limit,
    consecutiveErrorLimit: a.consecutive_error_limit,
    minQualitySamples: a.min_quality_samples,
  };
  const maxErrorRate = a.max_error_rate ?? (a.min_success_rate !== undefined ? 1 - a.min_success_rate : undefined);
  if (maxErrorRate !== undefined) config.maxErrorRate = maxErrorRate;
  if (a.max_error_rate_increase !== undefined) config.maxErrorRateIncrease = a.max_error_rate_increase;
  if (config.maxErrorRate === undefined && config.maxErrorRateIncrease === undefined) config.maxErrorRate = DEFAULT_MAX_ERROR_RATE;
  if (a.max_p95_ms !== undefined) config.maxP95Ms = a.max_p95_ms;
  if (a.max_p99_ms !== undefined) config.maxP99Ms = a.max_p99_ms;
  if (a.max_latency_ratio !== undefined) config.maxLatencyRatio = a.max_latency_ratio;
  if (a.min_quality !== undefined) config.minQuality = a.min_quality;
  return config;
}

function parseCanary(raw: NonNullable<TrafficConfig['canary']>, where: string): CanaryPolicy {
  const baseline = version(raw.baseline);
  const canary = version(raw.canary);
  if (baseline === canary) throw new ConfigError(`${where}.canary: baseline and canary are both version ${baseline}`);
  const analysis = parseAnalysis(raw.analysis, `${where}.canary.analysis`);
  let steps: CanaryStep[];
  if (raw.steps !== undefined) {
    if (raw.step_weight !== undefined || raw.max_weight !== undefined) {
      throw new ConfigError(`${where}.canary: give 'steps' or 'step_weight'/'max_weight', not both`);
    }
    steps = raw.steps.map((s, i) => ({ weight: s.weight, pauseMs: s.pause === undefined ? 0 : parseDuration(s.pause, `${where}.canary.steps[${i}].pause`) }));
    for (let i = 1; i < steps.length; i++) {
      if (steps[i]!.weight < steps[i - 1]!.weight) {
        throw new ConfigError(`${where}.canary.steps[${i}]: weight ${steps[i]!.weight} is below the previous step's ${steps[i - 1]!.weight}; a canary only grows`);
      }
    }
  } else if (raw.step_weight !== undefined) {
    const max = raw.max_weight ?? 50;
    if (raw.step_weight > max) throw new ConfigError(`${where}.canary: step_weight ${raw.step_weight} is above max_weight ${max}`);
    steps = [];
    for (let w = raw.step_weight; w <= max + 1e-9; w += raw.step_weight) steps.push({ weight: Math.min(w, max), pauseMs: analysis.intervalMs });
    steps.push({ weight: 100, pauseMs: 0 });
  } else {
    if (raw.max_weight !== undefined) throw new ConfigError(`${where}.canary: 'max_weight' needs 'step_weight'`);
    steps = DEFAULT_CANARY_STEPS.map((s) => ({ ...s }));
  }
  const policy: CanaryPolicy = { kind: 'canary', baseline, canary, steps, analysis };
  const sticky = checkSticky(raw.sticky, `${where}.canary`);
  if (sticky !== undefined) policy.sticky = sticky;
  return policy;
}

/** Validates a model's `traffic:` document; every problem names its key under `where`. */
export function parseTrafficConfig(raw: unknown, model: string, where = `traffic of model '${model}'`): TrafficPolicy {
  const config = validate<TrafficConfig>(TrafficConfigSchema, raw, where);
  const kinds = (['split', 'canary', 'blue_green'] as const).filter((k) => config[k] !== undefined);
  if (kinds.length > 1) throw new ConfigError(`${where}: give one of 'split', 'canary' or 'blue_green', not ${kinds.join(' and ')}`);
  const policy: TrafficPolicy = {};
  if (config.split !== undefined) policy.routing = parseSplit(config.split, model, where);
  if (config.canary !== undefined) policy.routing = parseCanary(config.canary, where);
  if (config.blue_green !== undefined) {
    const bg = config.blue_green;
    if (version(bg.active) === version(bg.standby)) throw new ConfigError(`${where}.blue_green: active and standby are both version ${version(bg.active)}`);
    policy.routing = {
      kind: 'blue_green',
      active: version(bg.active),
      standby: version(bg.standby),
      keepWarmMs: bg.keep_warm === undefined ? DEFAULT_KEEP_WARM_MS : parseDuration(bg.keep_warm, `${where}.blue_green.keep_warm`),
    };
  }
  if (config.shadow !== undefined) {
    const s = config.shadow;
    policy.shadow = {
      version: version(s.version),
      percent: s.percent,
      queueSize: s.queue_size,
      concurrency: s.concurrency,
      timeoutMs: s.timeout === undefined ? DEFAULT_SHADOW_TIMEOUT_MS : parseDuration(s.timeout, `${where}.shadow.timeout`),
      batchWindowMs: s.batch_window === undefined ? DEFAULT_SHADOW_BATCH_WINDOW_MS : parseDuration(s.batch_window, `${where}.shadow.batch_window`),
      maxBatch: s.max_batch,
      compare: s.compare,
      nice: s.nice ?? DEFAULT_SHADOW_NICE,
    };
    if (policy.shadow.timeoutMs < 1) throw new ConfigError(`${where}.shadow.timeout: must be at least 1ms`);
  }
  return policy;
}

/** The policy back in its document form (what the admin API returns and the database keeps). */
export function trafficConfigOf(policy: TrafficPolicy): TrafficConfig {
  const out: TrafficConfig = {};
  const r = policy.routing;
  const sticky = (s: StickyKey | undefined) => (s === undefined ? {} : { sticky: { ...s } });
  if (r?.kind === 'split') {
    out.split = { variants: r.variants.map((v) => ({ ...v })), ...sticky(r.sticky) };
    if (r.experiment !== undefined) {
      const e = r.experiment;
      out.split.experiment = {
        name: e.name,
        metric: e.metric,
        control: e.control,
        alpha: e.alpha,
        power: e.power,
        relative: e.relative,
        min_days: e.minDays,
        ...(e.baselineRate !== undefined ? { baseline_rate: e.baselineRate } : {}),
        ...(e.mde !== undefined ? { mde: e.mde } : {}),
        ...(e.dailyTraffic !== undefined ? { daily_traffic: e.dailyTraffic } : {}),
      };
    }
  } else if (r?.kind === 'canary') {
    const a = r.analysis;
    out.canary = {
      baseline: r.baseline,
      canary: r.canary,
      steps: r.steps.map((s) => ({ weight: s.weight, pause: formatDuration(s.pauseMs) })),
      analysis: {
        interval: formatDuration(a.intervalMs),
        min_requests: a.minRequests,
        failure_limit: a.failureLimit,
        inconclusive_limit: a.inconclusiveLimit,
        consecutive_error_limit: a.consecutiveErrorLimit,
        min_quality_samples: a.minQualitySamples,
        ...(a.maxErrorRate !== undefined ? { max_error_rate: a.maxErrorRate } : {}),
        ...(a.maxErrorRateIncrease !== undefined ? { max_error_rate_increase: a.maxErrorRateIncrease } : {}),
        ...(a.maxP95Ms !== undefined ? { max_p95_ms: a.maxP95Ms } : {}),
        ...(a.maxP99Ms !== undefined ? { max_p99_ms: a.maxP99Ms } : {}),
        ...(a.maxLatencyRatio !== undefined ? { max_latency_ratio: a.maxLatencyRatio } : {}),
        ...(a.minQuality !== undefined ? { min_quality: a.minQuality } : {}),
      },
      ...sticky(r.sticky),
    };
  } else if (r?.kind === 'blue_green') {
    out.blue_green = { active: r.active, standby: r.standby, keep_warm: formatDuration(r.keepWarmMs) };
  }
  if (policy.shadow !== undefined) {
    const s = policy.shadow;
    out.shadow = {
      version: s.version,
      percent: s.percent,
      queue_size: s.queueSize,
      concurrency: s.concurrency,
      timeout: formatDuration(s.timeoutMs),
      batch_window: formatDuration(s.batchWindowMs),
      max_batch: s.maxBatch,
      compare: s.compare,
      nice: s.nice,
    };
  }
  return out;
}

/** Versions the policy routes or mirrors to: the ones that must be loaded. */
export function versionsOf(policy: TrafficPolicy): string[] {
  const out = new Set<string>();
  const r = policy.routing;
  if (r?.kind === 'split') for (const v of r.variants) out.add(v.version);
  if (r?.kind === 'canary') (out.add(r.baseline), out.add(r.canary));
  if (r?.kind === 'blue_green') (out.add(r.active), out.add(r.standby));
  if (policy.shadow !== undefined) out.add(policy.shadow.version);
  return [...out];
}
