/**
 * inferd's Prometheus metrics: one Metrics object per server, owning its own Registry.
 *
 * Hot-path use: resolve a VersionMetrics once per (model, version) with `forVersion()` and keep
 * it (or call the Metrics shortcuts, which do that lookup in two Map reads). Record calls on a
 * disabled Metrics are empty functions. Every label is bounded: models and versions come from
 * the repository, reasons from FailureReason, classes and features from the model's signature
 * with a cap, routes from route templates with a cap.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Datatype, TensorData } from '../core/datatypes.js';
import type { FailureReason } from '../core/errors.js';
import { type MetricsConfig, type MetricsProtocol, validateMetricsConfig } from './config.js';
import { CounterChild, CounterFamily, GaugeChild, GaugeFamily, HistogramChild, HistogramFamily, checkBuckets } from './instruments.js';

export type Protocol = MetricsProtocol;
export type InferenceResult = 'success' | 'error';
export type MetricsOptions = Partial<MetricsConfig>;

/** The part of a tensor the metrics read; core Tensor objects fit it. */
export interface TensorView {
  name?: string;
  datatype: Datatype;
  shape: readonly number[];
  data: TensorData;
}

/** What the metrics may know of a model version beyond its name. */
export interface ModelVersionDescription {
  /** Shown in inferd_model_version_info (onnx, js...). */
  platform?: string;
  /** Class names by index; the class label is the index itself when absent. */
  classNames?: readonly string[];
  /** Buckets of this version's regression outputs, when the default range does not fit. */
  valueBuckets?: readonly number[];
}

/** Record calls for one model version; get it once from Metrics.forVersion() and keep it. */
export interface VersionMetrics {
  readonly model: string;
  readonly version: string;
  /** One finished inference as the caller saw it, end to end inside the server. */
  inference(protocol: Protocol, seconds: number, result: InferenceResult): void;
  failure(reason: FailureReason): void;
  queueTime(seconds: number): void;
  computeTime(seconds: number): void;
  batchSize(size: number): void;
  queueSize(size: number): void;
  /** Adds to the in-flight gauge of the model (all versions together). */
  inFlight(delta: number): void;
  /** Classification or regression statistics of one batch of outputs. */
  predictions(outputs: readonly TensorView[]): void;
  /** For out-of-range checks made elsewhere (a drift monitor, say). */
  outOfRange(feature: string, count?: number): void;
}

/** Feature labels per version beyond this are counted as feature="other". */
const MAX_FEATURES = 1024;
const LABEL_LIKE = /label|class/i;
/** Tolerance of "a row sums to 1": float32 softmax over 1000 classes is off by about 1e-6. */
const SUM_TOLERANCE = 1e-3;
const PROB_TOLERANCE = 1e-6;

export class Metrics {
  readonly enabled: boolean;
  readonly registry: Registry;
  readonly config: Readonly<MetricsConfig>;

  private readonly requestDuration: HistogramFamily;
  /** The metric families, for VersionMetrics and for tests; record through the methods. */
  readonly families: {
    readonly inferenceDuration: HistogramFamily;
    readonly queueDuration: HistogramFamily;
    readonly computeDuration: HistogramFamily;
    readonly batchSize: HistogramFamily;
    readonly requests: CounterFamily;
    readonly failures: CounterFamily;
    readonly inFlight: GaugeFamily;
    readonly queueSize: GaugeFamily;
    readonly predictionClass: CounterFamily;
    readonly predictionValue: HistogramFamily;
    readonly confidence: HistogramFamily;
    readonly lowConfidence: CounterFamily;
    readonly outOfRange: CounterFamily;
    readonly versionInfo: GaugeFamily;
  };

  private readonly versions = new Map<string, Map<string, LiveVersionMetrics>>();
  private readonly inFlightByModel = new Map<string, GaugeChild>();
  private readonly routes = new Map<string, Map<string, Map<number, HistogramChild>>>();
  private routeCount = 0;

  constructor(options: MetricsOptions = {}) {
    this.config = validateMetricsConfig(options, 'metrics options');
    this.enabled = this.config.enabled;
    this.registry = new Registry();
    // Disabled: nothing registered, nothing sampled, so /metrics is empty and costs nothing.
    const registry = this.enabled ? this.registry : undefined;
    const c = this.config;
    const mv = ['model', 'version'] as const;

    this.requestDuration = new HistogramFamily(
      'inferd_request_duration_seconds',
      'Front-door request latency by protocol, route template and status code.',
      ['protocol', 'route', 'status_code'],
      c.latencyBuckets,
      registry,
    );
    this.families = {
      inferenceDuration: new HistogramFamily(
        'inferd_inference_duration_seconds',
        'End-to-end inference latency inside the server (queue, batching, compute); the latency SLI.',
        [...mv, 'protocol'],
        c.latencyBuckets,
        registry,
      ),
      queueDuration: new HistogramFamily('inferd_inference_queue_duration_seconds', 'Time an inference waited for a batch and a worker.', mv, c.latencyBuckets, registry),
      computeDuration: new HistogramFamily('inferd_inference_compute_duration_seconds', 'Time the runtime spent on the batch that carried an inference.', mv, c.latencyBuckets, registry),
      batchSize: new HistogramFamily('inferd_batch_size', 'Rows per batch run by the runtime.', mv, c.batchSizeBuckets, registry),
      requests: new CounterFamily('inferd_inference_requests_total', 'Inferences finished, by outcome.', [...mv, 'protocol', 'result'], registry),
      failures: new CounterFamily('inferd_inference_failures_total', 'Failed inferences by reason.', [...mv, 'reason'], registry),
      inFlight: new GaugeFamily('inferd_inference_in_flight', 'Inferences accepted and not yet answered.', ['model'], registry),
      queueSize: new GaugeFamily('inferd_inference_queue_size', 'Inferences waiting in the batch queue.', mv, registry),
      predictionClass: new CounterFamily('inferd_prediction_class_total', 'Predicted classes (argmax of probabilities, or a label output).', [...mv, 'class'], registry),
      predictionValue: new HistogramFamily('inferd_prediction_value', 'Predicted values of regression outputs.', mv, c.predictionValueBuckets, registry),
      confidence: new HistogramFamily('inferd_prediction_confidence', 'Top-class probability of classifications.', mv, c.confidenceBuckets, registry),
      lowConfidence: new CounterFamily(
        'inferd_prediction_low_confidence_total',
        `Classifications whose top-class probability is below ${c.lowConfidenceThreshold}.`,
        mv,
        registry,
      ),
      outOfRange: new CounterFamily('inferd_input_out_of_range_total', 'Input values outside the expected range of their feature.', [...mv, 'feature'], registry),
      versionInfo: new GaugeFamily('inferd_model_version_info', 'Model versions registered for serving (value 1).', [...mv, 'platform'], registry),
    };

    if (this.enabled && c.defaultMetrics) {
      // process_* and nodejs_* under their standard names, event-loop lag included.
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: c.eventLoopResolutionMs });
    }
  }

  /** Content-Type of render()'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition for GET /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Declares a model version being served: sets its info series and creates its main series at
   * zero, so that rate() sees the first requests (a series born at 1 loses its first increase).
   * Registering again updates the description and keeps the series and counts.
   */
  registerModelVersion(model: string, version: string, description: ModelVersionDescription = {}): VersionMetrics {
    if (!this.enabled) return NOOP_VERSION;
    const handle = this.live(model, version);
    handle.describe(description);
    this.families.versionInfo.removeWhere((labels) => labels['model'] === model && labels['version'] === version);
    this.families.versionInfo.child(model, version, description.platform ?? 'unknown').set(1);
    for (const protocol of this.config.protocols) handle.initProtocol(protocol);
    return handle;
  }

  /** Drops every series of a model version (after unloading it); its handles stop reporting. */
  removeModelVersion(model: string, version: string): void {
    if (!this.enabled) return;
    const byVersion = this.versions.get(model);
    if (byVersion === undefined || !byVersion.delete(version)) return;
    const f = this.families;
    const match = (labels: Readonly<Record<string, string>>): boolean => labels['model'] === model && labels['version'] === version;
    for (const family of [f.inferenceDuration, f.queueDuration, f.computeDuration, f.batchSize, f.requests, f.failures, f.queueSize, f.predictionClass, f.predictionValue, f.confidence, f.lowConfidence, f.outOfRange, f.versionInfo]) {
      family.removeWhere(match);
    }
  }

  /** The record calls of one model version; cached, so calling it per request is fine too. */
  forVersion(model: string, version: string): VersionMetrics {
    if (!this.enabled) return NOOP_VERSION;
    return this.versions.get(model)?.get(version) ?? this.live(model, version);
  }

  private live(model: string, version: string): LiveVersionMetrics {
    let byVersion = this.versions.get(model);
    if (byVersion === undefined) {
      byVersion = new Map();
      this.versions.set(model, byVersion);
    }
    let handle = byVersion.get(version);
    if (handle === undefined) {
      handle = new LiveVersionMetrics(this, model, version);
      byVersion.set(version, handle);
    }
    return handle;
  }

  /** @internal the in-flight gauge child of a model. */
  inFlightChild(model: string): GaugeChild {
    let child = this.inFlightByModel.get(model);
    if (child === undefined) {
      child = this.families.inFlight.child(model);
      this.inFlightByModel.set(model, child);
    }
    return child;
  }

  /**
   * Front-door latency; `route` is the route template (`/v2/models/:model/infer`, or the gRPC
   * method), never a raw URL; `statusCode` is the HTTP status or the gRPC status code.
   */
  observeRequest(protocol: Protocol, route: string, statusCode: number, seconds: number): void {
    if (!this.enabled) return;
    let byRoute = this.routes.get(protocol);
    if (byRoute === undefined) {
      byRoute = new Map();
      this.routes.set(protocol, byRoute);
    }
    let byStatus = byRoute.get(route);
    if (byStatus === undefined) {
      if (this.routeCount >= this.config.maxRoutes && route !== 'other') return this.observeRequest(protocol, 'other', statusCode, seconds);
      byStatus = new Map();
      byRoute.set(route, byStatus);
      this.routeCount++;
    }
    let child = byStatus.get(statusCode);
    if (child === undefined) {
      child = this.requestDuration.child(protocol, route, String(statusCode));
      byStatus.set(statusCode, child);
    }
    child.observe(seconds);
  }

  // Shortcuts that look the version up on each call; equivalent to forVersion(model, version).x().

  observeInference(model: string, version: string, protocol: Protocol, seconds: number, result: InferenceResult): void {
    if (this.enabled) this.forVersion(model, version).inference(protocol, seconds, result);
  }

  recordFailure(model: string, version: string, reason: FailureReason): void {
    if (this.enabled) this.forVersion(model, version).failure(reason);
  }

  observeQueueTime(model: string, version: string, seconds: number): void {
    if (this.enabled) this.forVersion(model, version).queueTime(seconds);
  }

  observeComputeTime(model: string, version: string, seconds: number): void {
    if (this.enabled) this.forVersion(model, version).computeTime(seconds);
  }

  observeBatchSize(model: string, version: string, size: number): void {
    if (this.enabled) this.forVersion(model, version).batchSize(size);
  }

  setQueueSize(model: string, version: string, size: number): void {
    if (this.enabled) this.forVersion(model, version).queueSize(size);
  }

  addInFlight(model: string, delta: number): void {
    if (this.enabled) this.inFlightChild(model).inc(delta);
  }

  observePredictions(model: string, version: string, outputs: readonly TensorView[]): void {
    if (this.enabled) this.forVersion(model, version).predictions(outputs);
  }

  recordOutOfRange(model: string, version: string, feature: string, count = 1): void {
    if (this.enabled) this.forVersion(model, version).outOfRange(feature, count);
  }
}

interface ProtocolChildren {
  duration: HistogramChild;
  success: CounterChild;
  error: CounterChild;
}

class LiveVersionMetrics implements VersionMetrics {
  readonly model: string;
  readonly version: string;
  private readonly metrics: Metrics;
  private readonly protocols: Partial<Record<Protocol, ProtocolChildren>> = {};
  private readonly failures: Partial<Record<FailureReason, CounterChild>> = {};
  private readonly queue: HistogramChild;
  private readonly compute: HistogramChild;
  private readonly batch: HistogramChild;
  private readonly queueGauge: GaugeChild;
  private readonly inFlightGauge: GaugeChild;
  /** Created with the first classification, so regression models carry no confidence series. */
  private confidence: HistogramChild | undefined;
  private lowConfidence: CounterChild | undefined;
  private readonly lowConfidenceThreshold: number;
  private readonly maxClasses: number;
  private classNames: readonly string[] | undefined;
  private readonly classes: Array<CounterChild | undefined> = [];
  private otherClass: CounterChild | undefined;
  private valueBuckets: readonly number[] | undefined;
  private value: HistogramChild | undefined;
  private readonly features = new Map<string, CounterChild>();

  constructor(metrics: Metrics, model: string, version: string) {
    this.metrics = metrics;
    this.model = model;
    this.version = version;
    const f = metrics.families;
    this.queue = f.queueDuration.child(model, version);
    this.compute = f.computeDuration.child(model, version);
    this.batch = f.batchSize.child(model, version);
    this.queueGauge = f.queueSize.child(model, version);
    this.inFlightGauge = metrics.inFlightChild(model);
    this.lowConfidenceThreshold = metrics.config.lowConfidenceThreshold;
    this.maxClasses = metrics.config.maxClasses;
  }

  describe(description: ModelVersionDescription): void {
    if (!sameList(description.classNames, this.classNames)) {
      this.classNames = description.classNames;
      this.classes.length = 0;
      this.metrics.families.predictionClass.removeWhere((labels) => labels['model'] === this.model && labels['version'] === this.version);
      this.otherClass = undefined;
    }
    if (description.valueBuckets !== undefined && !sameList(description.valueBuckets, this.valueBuckets)) {
      // Checked here so that a bad description fails at registration, not on a later request.
      checkBuckets(`${this.model} ${this.version} valueBuckets`, description.valueBuckets);
      this.valueBuckets = description.valueBuckets;
      this.value = undefined;
      this.metrics.families.predictionValue.removeWhere((labels) => labels['model'] === this.model && labels['version'] === this.version);
    }
  }

  initProtocol(protocol: Protocol): void {
    this.protocolChildren(protocol);
  }

  private protocolChildren(protocol: Protocol): ProtocolChildren {
    let children = this.protocols[protocol];
    if (children === undefined) {
      const f = this.metrics.families;
      children = {
        duration: f.inferenceDuration.child(this.model, this.version, protocol),
        success: f.requests.child(this.model, this.version, protocol, 'success'),
        error: f.requests.child(this.model, this.version, protocol, 'error'),
      };
      this.protocols[protocol] = children;
    }
    return children;
  }

  inference(protocol: Protocol, seconds: number, result: InferenceResult): void {
    const children = this.protocols[protocol] ?? this.protocolChildren(protocol);
    children.duration.observe(seconds);
    (result === 'success' ? children.success : children.error).inc();
  }

  failure(reason: FailureReason): void {
    let child = this.failures[reason];
    if (child === undefined) {
      child = this.metrics.families.failures.child(this.model, this.version, reason);
      this.failures[reason] = child;
    }
    child.inc();
  }

  queueTime(seconds: number): void {
    this.queue.observe(seconds);
  }

  computeTime(seconds: number): void {
    this.compute.observe(seconds);
  }

  batchSize(size: number): void {
    this.batch.observe(size);
  }

  queueSize(size: number): void {
    this.queueGauge.set(size);
  }

  inFlight(delta: number): void {
    this.inFlightGauge.inc(delta);
  }

  predictions(outputs: readonly TensorView[]): void {
    let probabilities: TensorView | undefined;
    let label: TensorView | undefined;
    let regression: TensorView | undefined;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs[i];
      const { datatype, shape } = output;
      const columnLike = shape.length === 1 || (shape.length === 2 && shape[1] === 1);
      if (datatype === 'FP32' || datatype === 'FP64') {
        if (shape.length === 2 && shape[1] >= 2) {
          if (probabilities === undefined && firstRowIsDistribution(output.data as Float32Array | Float64Array, shape[1])) probabilities = output;
        } else if (columnLike && regression === undefined && !(output.name !== undefined && LABEL_LIKE.test(output.name))) {
          regression = output;
        }
      } else if ((datatype === 'INT64' || datatype === 'INT32') && columnLike && label === undefined && (output.name === undefined || LABEL_LIKE.test(output.name))) {
        label = output;
      }
    }
    // Probabilities win over a label output of the same model: they also give the confidence.
    if (probabilities !== undefined) this.observeProbabilities(probabilities.data as Float32Array | Float64Array, probabilities.shape[1]);
    else if (label !== undefined) this.observeLabels(label.data as Int32Array | BigInt64Array);
    else if (regression !== undefined) this.observeValues(regression.data as Float32Array | Float64Array);
  }

  private observeProbabilities(data: Float32Array | Float64Array, k: number): void {
    const rows = Math.floor(data.length / k);
    const threshold = this.lowConfidenceThreshold;
    const f = this.metrics.families;
    const confidence = (this.confidence ??= f.confidence.child(this.model, this.version));
    const lowConfidence = (this.lowConfidence ??= f.lowConfidence.child(this.model, this.version));
    let low = 0;
    for (let r = 0; r < rows; r++) {
      const offset = r * k;
      let best = 0;
      let max = data[offset];
      for (let j = 1; j < k; j++) {
        const p = data[offset + j];
        if (p > max) {
          max = p;
          best = j;
        }
      }
      this.classChild(best).inc();
      confidence.observe(max);
      if (max < threshold) low++;
    }
    lowConfidence.inc(low);
  }

  private observeLabels(data: Int32Array | BigInt64Array): void {
    if (data instanceof BigInt64Array) {
      for (let i = 0; i < data.length; i++) this.classChild(Number(data[i])).inc();
    } else {
      for (let i = 0; i < data.length; i++) this.classChild(data[i]).inc();
    }
  }

  private observeValues(data: Float32Array | Float64Array): void {
    let child = this.value;
    if (child === undefined) {
      const family = this.metrics.families.predictionValue;
      child = this.valueBuckets === undefined ? family.child(this.model, this.version) : family.childWithBuckets(this.valueBuckets, this.model, this.version);
      this.value = child;
    }
    for (let i = 0; i < data.length; i++) child.observe(data[i]);
  }

  private classChild(index: number): CounterChild {
    if (Number.isInteger(index) && index >= 0 && index < this.maxClasses) {
      let child = this.classes[index];
      if (child === undefined) {
        child = this.metrics.families.predictionClass.child(this.model, this.version, this.classNames?.[index] ?? String(index));
        this.classes[index] = child;
      }
      return child;
    }
    if (this.otherClass === undefined) this.otherClass = this.metrics.families.predictionClass.child(this.model, this.version, 'other');
    return this.otherClass;
  }

  outOfRange(feature: string, count = 1): void {
    this.featureChild(feature).inc(count);
  }

  private featureChild(feature: string): CounterChild {
    let child = this.features.get(feature);
    if (child === undefined) {
      const name = this.features.size < MAX_FEATURES ? feature : 'other';
      child = this.metrics.families.outOfRange.child(this.model, this.version, name);
      if (name === feature) this.features.set(feature, child);
    }
    return child;
  }
}

function sameList<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  return a.every((item, i) => item === b[i]);
}

function firstRowIsDistribution(data: Float32Array | Float64Array, k: number): boolean {
  if (data.length < k) return false;
  let sum = 0;
  for (let j = 0; j < k; j++) {
    const p = data[j];
    if (!(p >= -PROB_TOLERANCE && p <= 1 + PROB_TOLERANCE)) return false;
    sum += p;
  }
  return Math.abs(sum - 1) <= SUM_TOLERANCE;
}

const noop = (): void => {};

/** Shared by every model version when metrics are off. */
const NOOP_VERSION: VersionMetrics = Object.freeze({
  model: '',
  version: '',
  inference: noop,
  failure: noop,
  queueTime: noop,
  computeTime: noop,
  batchSize: noop,
  queueSize: noop,
  inFlight: noop,
  predictions: noop,
  outOfRange: noop,
});
