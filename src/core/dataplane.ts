/**
 * The data plane: the one in-process API behind every front door. It resolves the model
 * version, runs the request through the version's scheduler and workers, and keeps the
 * server-wide state (started, draining) that health checks report.
 */
import { createRequire } from 'node:module';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import type { ModelManager } from '../models/manager.js';
import type { LoadedResult } from '../models/model-version.js';
import { ModelNotFoundError, UnavailableError } from './errors.js';
import type {
  InferenceRequest,
  InferenceResponse,
  InferenceService,
  ModelMetadata,
  ModelStatistics,
  RepositoryEntry,
  RequestContext,
  ServerMetadata,
} from './types.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export const SERVER_EXTENSIONS = ['model_repository', 'statistics', 'binary_tensor_data', 'schedule_policy', 'sequence_batching_disabled'];

/** Observes every request the data plane answers (metrics, access logs). */
export interface RequestObserver {
  onInferStart?(context: RequestContext, model: string): void;
  onInferDone?(context: RequestContext, model: string, version: string, result: LoadedResult | undefined, error: unknown, durationNs: number): void;
}

export interface DataPlaneOptions {
  observer?: RequestObserver;
  /** Extra readiness checks (dependencies such as a registry database). */
  readinessChecks?: Array<() => boolean>;
  /** When set, every inference is traced: request → queue → batch → inference spans. */
  tracer?: Tracer;
}

export class DataPlane implements InferenceService {
  private started = false;
  private draining = false;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly models: ModelManager,
    private readonly options: DataPlaneOptions = {},
  ) {}

  /** Marks initialisation finished (startup probe). */
  markStarted(): void {
    this.started = true;
  }

  get isStarted(): boolean {
    return this.started;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Readiness fails at once; requests already accepted still complete. */
  startDraining(): void {
    this.draining = true;
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  live(): boolean {
    return true;
  }

  ready(): boolean {
    if (!this.started || this.draining || !this.models.allReady()) return false;
    for (const check of this.options.readinessChecks ?? []) if (!check()) return false;
    return true;
  }

  metadata(): ServerMetadata {
    return { name: 'inferd', version: pkg.version, extensions: SERVER_EXTENSIONS };
  }

  modelReady(name: string, version?: string): boolean {
    return !this.draining && this.models.isReady(name, version);
  }

  modelMetadata(name: string, version?: string): ModelMetadata {
    const { entry, version: v } = this.models.find(name, version);
    if (!v) throw new UnavailableError(`model '${name}' has no loaded version${entry.reason ? `: ${entry.reason}` : ''}`);
    const versions = this.models.versionsOf(name).map((x) => x.version).sort((a, b) => Number(a) - Number(b));
    return {
      name,
      versions: version ? [v.version] : versions,
      platform: v.config.runtime === 'onnx' ? 'onnxruntime_onnx' : 'inferd_js',
      inputs: v.inputs,
      outputs: v.outputs,
      // Batching clients (perf_analyzer, tritonclient) read the batch limit from here.
      parameters: { max_batch_size: v.config.max_batch_size },
    };
  }

  async infer(name: string, version: string | undefined, request: InferenceRequest, context: RequestContext): Promise<InferenceResponse> {
    if (this.draining) throw new UnavailableError('the server is shutting down', 5);
    const started = performance.now();
    this.inFlight++;
    let model = name;
    let resolvedVersion = '';
    const observer = this.options.observer;
    try {
      const v = this.models.resolve(name, version);
      model = v.name;
      resolvedVersion = v.version;
      observer?.onInferStart?.(context, model);
      const result = await v.infer(request, context);
      context.outcome = { model, version: resolvedVersion, queueMs: result.queueNs / 1e6, computeMs: result.computeNs / 1e6, batchRows: result.batchRows };
      observer?.onInferDone?.(context, model, resolvedVersion, result, undefined, (performance.now() - started) * 1e6);
      if (this.options.tracer) this.trace(this.options.tracer, context, model, resolvedVersion, started, result, undefined);
      return result.response;
    } catch (error) {
      observer?.onInferDone?.(context, model, resolvedVersion, undefined, error, (performance.now() - started) * 1e6);
      if (this.options.tracer) this.trace(this.options.tracer, context, model, resolvedVersion, started, undefined, error);
      throw error;
    } finally {
      if (--this.inFlight === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /**
   * Records the request's spans after the fact from the timings the scheduler and the worker
   * measured, so tracing adds nothing to the path of an untraced request.
   */
  private trace(tracer: Tracer, context: RequestContext, model: string, version: string, started: number, result: LoadedResult | undefined, error: unknown): void {
    const origin = performance.timeOrigin;
    const parent = (context.trace as Context | undefined) ?? ROOT_CONTEXT;
    const span = tracer.startSpan(
      `infer ${model}`,
      {
        kind: SpanKind.SERVER,
        startTime: origin + started,
        attributes: { 'inferd.model': model, 'inferd.version': version, 'inferd.protocol': context.protocol, 'inferd.request_id': context.requestId },
      },
      parent,
    );
    const end = origin + performance.now();
    if (result) {
      const inner = trace.setSpan(parent, span);
      const queueEnd = origin + started + result.queueNs / 1e6;
      tracer.startSpan('queue', { startTime: origin + started }, inner).end(queueEnd);
      const batch = tracer.startSpan('batch', { startTime: queueEnd, attributes: { 'inferd.batch_size': result.batchRows } }, inner);
      const inferStart = queueEnd + result.inputNs / 1e6;
      tracer.startSpan('inference', { startTime: inferStart }, trace.setSpan(inner, batch)).end(inferStart + result.inferNs / 1e6);
      batch.end(queueEnd + result.computeNs / 1e6);
    } else {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end(end);
  }

  /** Resolves once no inference is in flight. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  repositoryIndex(readyOnly = false): Promise<RepositoryEntry[]> {
    return this.models.index(readyOnly);
  }

  loadModel(name: string): Promise<void> {
    return this.models.load(name);
  }

  unloadModel(name: string): Promise<void> {
    return this.models.unload(name);
  }

  modelStatistics(name?: string, version?: string): ModelStatistics[] {
    if (name === undefined || name === '') return this.models.loaded().map((v) => v.stats.snapshot());
    const versions = this.models.versionsOf(name);
    if (versions.length === 0) {
      this.models.find(name); // throws NOT_FOUND for an unknown model
      return [];
    }
    const chosen = version ? versions.filter((v) => v.version === version) : versions;
    if (version && chosen.length === 0) throw new ModelNotFoundError(name, version);
    return chosen.map((v) => v.stats.snapshot());
  }
}
