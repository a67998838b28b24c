/**
 * The `metrics` and `slo` configuration sections: types, defaults and validation.
 * Both validators take the raw parsed section (or undefined for "all defaults"), fill in the
 * defaults, and report every problem at once, naming unknown keys by their path.
 */

/** Seconds; the seed's latency buckets, fine enough around the 0.5 s and 1 s objectives. */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const DEFAULT_BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
export const DEFAULT_CONFIDENCE_BUCKETS: readonly number[] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
export const DEFAULT_PREDICTION_VALUE_BUCKETS: readonly number[] = [-1000, -100, -10, -1, -0.1, 0, 0.1, 1, 10, 100, 1000];

export type MetricsProtocol = 'rest' | 'grpc' | 'kafka' | 'batch' | 'internal';
const PROTOCOLS: readonly MetricsProtocol[] = ['rest', 'grpc', 'kafka', 'batch', 'internal'];

export interface MetricsConfig {
  /** Off makes every record call a no-op and `/metrics` empty. */
  enabled: boolean;
  /** Bucket bounds in seconds of every duration histogram; SLO latency thresholds must be among them. */
  latencyBuckets: number[];
  batchSizeBuckets: number[];
  /** Buckets of the top-class probability. */
  confidenceBuckets: number[];
  /** Default buckets of regression outputs; a model version can bring its own. */
  predictionValueBuckets: number[];
  /** A classification whose top probability is below this counts as low confidence. */
  lowConfidenceThreshold: number;
  /** Class indexes at or above this are counted as class="other", bounding the label. */
  maxClasses: number;
  /** Distinct route templates tracked; more are counted as route="other". */
  maxRoutes: number;
  /** The front doors in use: their per-protocol series start at zero when a model version is registered. */
  protocols: MetricsProtocol[];
  /** Node.js process metrics (process_*, nodejs_*, including event-loop lag). */
  defaultMetrics: boolean;
  /** Resolution of the event-loop delay monitor, milliseconds. */
  eventLoopResolutionMs: number;
}

export const DEFAULT_METRICS_CONFIG: Readonly<MetricsConfig> = deepFreeze({
  enabled: true,
  latencyBuckets: [...DEFAULT_LATENCY_BUCKETS],
  batchSizeBuckets: [...DEFAULT_BATCH_SIZE_BUCKETS],
  confidenceBuckets: [...DEFAULT_CONFIDENCE_BUCKETS],
  predictionValueBuckets: [...DEFAULT_PREDICTION_VALUE_BUCKETS],
  lowConfidenceThreshold: 0.7,
  maxClasses: 100,
  maxRoutes: 100,
  protocols: ['rest', 'grpc'],
  defaultMetrics: true,
  eventLoopResolutionMs: 10,
});

/** "A fraction of inferences at least `objective` completes within `thresholdSeconds`." */
export interface LatencyObjective {
  /** Must equal one of metrics.latencyBuckets: the SLI reads that bucket. */
  thresholdSeconds: number;
  objective: number;
}

export interface SloConfig {
  /** Fraction of inferences that must not fail (result="error"); 0.999 is an error ratio below 0.1%. */
  errors: { enabled: boolean; objective: number };
  /**
   * Latency objectives. The defaults restate "P95 < 0.5 s, P99 < 1 s" as ratios of good events,
   * which is what a burn rate needs: at least 95% within 0.5 s and at least 99% within 1 s.
   */
  latency: LatencyObjective[];
  /**
   * Fraction of time the server is up, measured by Prometheus's own `up` series of the scrape
   * job. Request ratios go silent when the process is down, so this catches what they cannot.
   */
  availability: { enabled: boolean; objective: number; job: string };
  /** Evaluation interval of the generated rule groups (Prometheus duration). */
  evaluationInterval: string;
  /** Extra labels on every alert (team, service...). */
  alertLabels: Record<string, string>;
  /** Added as the runbook_url annotation of every alert when set. */
  runbookUrl?: string;
}

export const DEFAULT_SLO_CONFIG: Readonly<SloConfig> = deepFreeze({
  errors: { enabled: true, objective: 0.999 },
  latency: [
    { thresholdSeconds: 0.5, objective: 0.95 },
    { thresholdSeconds: 1, objective: 0.99 },
  ],
  availability: { enabled: true, objective: 0.995, job: 'inferd' },
  evaluationInterval: '30s',
  alertLabels: {},
});

/**
 * The fast-burn page fires at 14.4 times the budget rate: an objective whose error budget is
 * 1/14.4 (about 6.9%) or more could never page, so objectives must be above this.
 */
export const MIN_OBJECTIVE = 1 - 1 / 14.4;

export class ConfigValidationError extends Error {
  readonly issues: readonly string[];
  constructor(section: string, issues: readonly string[]) {
    super(`invalid ${section} configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'ConfigValidationError';
    this.issues = issues;
  }
}

export function validateMetricsConfig(input: unknown, path = 'metrics'): MetricsConfig {
  const issues: string[] = [];
  const section = readSection(input, path, issues);
  const config: MetricsConfig = structuredClone({ ...DEFAULT_METRICS_CONFIG });
  if (section !== undefined) {
    rejectUnknown(section, Object.keys(DEFAULT_METRICS_CONFIG), path, issues);
    const v = new Reader(section, path, issues);
    config.enabled = v.boolean('enabled', config.enabled);
    config.latencyBuckets = v.buckets('latencyBuckets', config.latencyBuckets, 0);
    config.batchSizeBuckets = v.buckets('batchSizeBuckets', config.batchSizeBuckets, 1);
    config.confidenceBuckets = v.buckets('confidenceBuckets', config.confidenceBuckets, 0);
    config.predictionValueBuckets = v.buckets('predictionValueBuckets', config.predictionValueBuckets, -Infinity);
    config.lowConfidenceThreshold = v.number('lowConfidenceThreshold', config.lowConfidenceThreshold, 0, 1);
    config.maxClasses = v.integer('maxClasses', config.maxClasses, 1, 10_000);
    config.maxRoutes = v.integer('maxRoutes', config.maxRoutes, 1, 10_000);
    config.protocols = v.protocols('protocols', config.protocols);
    config.defaultMetrics = v.boolean('defaultMetrics', config.defaultMetrics);
    config.eventLoopResolutionMs = v.integer('eventLoopResolutionMs', config.eventLoopResolutionMs, 1, 1000);
  }
  if (issues.length > 0) throw new ConfigValidationError(path, issues);
  return config;
}

/**
 * Validates the slo section against the latency buckets the metrics use: a latency threshold
 * that is not a bucket bound cannot be measured, so it is an error, not a silent approximation.
 */
export function validateSloConfig(input: unknown, latencyBuckets: readonly number[] = DEFAULT_LATENCY_BUCKETS, path = 'slo'): SloConfig {
  const issues: string[] = [];
  const section = readSection(input, path, issues);
  const config: SloConfig = structuredClone({ ...DEFAULT_SLO_CONFIG });
  if (section !== undefined) {
    rejectUnknown(section, ['errors', 'latency', 'availability', 'evaluationInterval', 'alertLabels', 'runbookUrl'], path, issues);
    const v = new Reader(section, path, issues);

    const errors = v.object('errors', ['enabled', 'objective']);
    if (errors !== undefined) {
      config.errors.enabled = errors.boolean('enabled', config.errors.enabled);
      config.errors.objective = errors.objective('objective', config.errors.objective);
    }

    const availability = v.object('availability', ['enabled', 'objective', 'job']);
    if (availability !== undefined) {
      config.availability.enabled = availability.boolean('enabled', config.availability.enabled);
      config.availability.objective = availability.objective('objective', config.availability.objective);
      config.availability.job = availability.labelValue('job', config.availability.job);
    }

    if (section['latency'] !== undefined) {
      const list = section['latency'];
      if (!Array.isArray(list)) {
        issues.push(`${path}.latency must be a list of { thresholdSeconds, objective }`);
      } else {
        config.latency = list.map((item: unknown, i) => {
          const itemPath = `${path}.latency[${i}]`;
          const obj = readSection(item, itemPath, issues) ?? {};
          rejectUnknown(obj, ['thresholdSeconds', 'objective'], itemPath, issues);
          const r = new Reader(obj, itemPath, issues);
          return { thresholdSeconds: r.number('thresholdSeconds', Number.NaN, 0, Infinity, true), objective: r.objective('objective', Number.NaN, true) };
        });
      }
    }

    config.evaluationInterval = v.duration('evaluationInterval', config.evaluationInterval);
    config.alertLabels = v.labels('alertLabels', config.alertLabels);
    const runbook = v.string('runbookUrl', undefined);
    if (runbook !== undefined) config.runbookUrl = runbook;
  }
  checkLatencyThresholds(config.latency, latencyBuckets, path, issues);
  if (issues.length > 0) throw new ConfigValidationError(path, issues);
  return config;
}

/** Problems of latency objectives against the buckets; shared with the rule generator. */
export function checkLatencyThresholds(latency: readonly LatencyObjective[], buckets: readonly number[], path: string, issues: string[]): void {
  const seen = new Set<number>();
  latency.forEach((item, i) => {
    if (Number.isNaN(item.thresholdSeconds)) return;
    if (!buckets.includes(item.thresholdSeconds)) {
      issues.push(`${path}.latency[${i}].thresholdSeconds ${item.thresholdSeconds} is not a latency bucket bound (${buckets.join(', ')}); the SLI reads the le="${item.thresholdSeconds}" bucket`);
    }
    if (seen.has(item.thresholdSeconds)) issues.push(`${path}.latency[${i}].thresholdSeconds ${item.thresholdSeconds} is listed twice`);
    seen.add(item.thresholdSeconds);
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function readSection(input: unknown, path: string, issues: string[]): Record<string, unknown> | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) {
    issues.push(`${path} must be a mapping`);
    return undefined;
  }
  return input as Record<string, unknown>;
}

function rejectUnknown(section: Record<string, unknown>, known: readonly string[], path: string, issues: string[]): void {
  for (const key of Object.keys(section)) {
    if (!known.includes(key)) issues.push(`${path}.${key} is not a known key (known: ${known.join(', ')})`);
  }
}

const DURATION = /^[0-9]+(ms|s|m|h|d)$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Label values end up inside PromQL string literals; keep them free of quotes and backslashes.
const SAFE_LABEL_VALUE = /^[^"\\\n]+$/;

/** Reads typed fields of one mapping, collecting problems instead of throwing. */
class Reader {
  constructor(
    private readonly section: Record<string, unknown>,
    private readonly path: string,
    private readonly issues: string[],
  ) {}

  private at(key: string): string {
    return `${this.path}.${key}`;
  }

  private missing(key: string, required: boolean): boolean {
    if (this.section[key] !== undefined) return false;
    if (required) this.issues.push(`${this.at(key)} is required`);
    return true;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.section[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.issues.push(`${this.at(key)} must be true or false`);
      return fallback;
    }
    return value;
  }

  number(key: string, fallback: number, min: number, max: number, required = false): number {
    if (this.missing(key, required)) return fallback;
    const value = this.section[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      this.issues.push(`${this.at(key)} must be a number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const value = this.number(key, fallback, min, max);
    if (!Number.isInteger(value)) {
      this.issues.push(`${this.at(key)} must be an integer`);
      return fallback;
    }
    return value;
  }

  objective(key: string, fallback: number, required = false): number {
    if (this.missing(key, required)) return fallback;
    const value = this.section[key];
    if (typeof value !== 'number' || !(value > MIN_OBJECTIVE) || !(value < 1)) {
      this.issues.push(`${this.at(key)} must be a fraction above ${MIN_OBJECTIVE.toFixed(4)} and below 1 (e.g. 0.999); lower objectives could never page at a 14.4x burn rate`);
      return fallback;
    }
    return value;
  }

  string(key: string, fallback: string | undefined): string | undefined {
    const value = this.section[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || value.length === 0) {
      this.issues.push(`${this.at(key)} must be a non-empty string`);
      return fallback;
    }
    return value;
  }

  labelValue(key: string, fallback: string): string {
    const value = this.string(key, fallback) ?? fallback;
    if (!SAFE_LABEL_VALUE.test(value)) {
      this.issues.push(`${this.at(key)} must not contain quotes, backslashes or newlines`);
      return fallback;
    }
    return value;
  }

  duration(key: string, fallback: string): string {
    const value = this.string(key, fallback) ?? fallback;
    if (!DURATION.test(value) || /^0+[a-z]+$/.test(value)) {
      this.issues.push(`${this.at(key)} must be a Prometheus duration such as 30s or 1m`);
      return fallback;
    }
    return value;
  }

  buckets(key: string, fallback: number[], min: number): number[] {
    const value = this.section[key];
    if (value === undefined) return fallback;
    const ok =
      Array.isArray(value) &&
      value.length > 0 &&
      value.every((b, i) => typeof b === 'number' && Number.isFinite(b) && b >= min && (i === 0 || b > (value[i - 1] as number)));
    if (!ok) {
      this.issues.push(`${this.at(key)} must be a non-empty list of finite numbers in increasing order${min > -Infinity ? `, each at least ${min}` : ''}`);
      return fallback;
    }
    return [...(value as number[])];
  }

  protocols(key: string, fallback: MetricsProtocol[]): MetricsProtocol[] {
    const value = this.section[key];
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || !value.every((p): p is MetricsProtocol => PROTOCOLS.includes(p as MetricsProtocol))) {
      this.issues.push(`${this.at(key)} must be a list of ${PROTOCOLS.join(', ')}`);
      return fallback;
    }
    return [...new Set(value)];
  }

  labels(key: string, fallback: Record<string, string>): Record<string, string> {
    const value = this.section[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.issues.push(`${this.at(key)} must be a mapping of label names to values`);
      return fallback;
    }
    const out: Record<string, string> = {};
    for (const [name, labelValue] of Object.entries(value)) {
      if (!LABEL_NAME.test(name) || name.startsWith('__')) this.issues.push(`${this.at(key)}.${name} is not a valid label name`);
      else if (typeof labelValue !== 'string') this.issues.push(`${this.at(key)}.${name} must be a string`);
      else out[name] = labelValue;
    }
    return out;
  }

  object(key: string, known: readonly string[]): Reader | undefined {
    const value = this.section[key];
    const section = readSection(value, this.at(key), this.issues);
    if (section === undefined) return undefined;
    rejectUnknown(section, known, this.at(key), this.issues);
    return new Reader(section, this.at(key), this.issues);
  }
}
