/**
 * The data plane: the one in-process API behind every front door. A door builds a context
 * (context.ts), decodes its wire format into the shared types, and calls one method here; the
 * call runs through the request pipeline (chain.ts) and, for inference, ends in the served
 * version's scheduler and workers. The plane also keeps the server-wide state health reports:
 * started, draining, and the count of requests in flight.
 */
import { createRequire } from 'node:module';
import { InvalidInputError, ModelNotFoundError, UnavailableError } from '../core/errors.js';
import { rawByteLength } from '../codecs/raw.js';
import type {
  InferenceRequest,
  Tensor,
  InferenceResponse,
  ModelMetadata,
  ModelStatistics,
  RepositoryEntry,
  ServerMetadata,
} from '../core/types.js';
import type { ModelManager } from '../models/manager.js';
import type { RunContinuation } from '../models/model-version.js';
import { composeControl, composeInfer } from './chain.js';
import type { ControlCall, NextControl, NextInfer, PipelineContext, Policy, Readiness, ServingPlane } from './types.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export const SERVER_EXTENSIONS = ['model_repository', 'statistics', 'binary_tensor_data', 'schedule_policy', 'sequence_batching_disabled'];

export interface DataPlaneOptions {
  /** The request pipeline, in order (standard.ts), or a function of the plane that builds it. */
  policies: Policy[] | ((plane: DataPlane) => Policy[]);
  /** Extra readiness checks (dependencies such as a registry database). */
  readinessChecks?: Array<() => boolean>;
  /** Told when a request starts and stops running on a model (the in-flight gauge). */
  inFlight?: (model: string, delta: 1 | -1) => void;
  /** Largest answer in output-tensor bytes; default 64 MiB. */
  maxResponseBytes?: number;
}

const PERFORM = Symbol('perform');
type InferenceWatcher = Required<Pick<Policy, 'inferenceBegan' | 'inferenceSettled'>>;
/** The policies of the served end of the chain (see inferServed). */
const SERVED_END = new Set(['resolve', 'validate']);
type PerformingCall = ControlCall & { [PERFORM]: () => unknown };

export class DataPlane implements ServingPlane {
  private started = false;
  private draining = false;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly runInfer: NextInfer;
  /** The first policy, when it watches inferences through the plane (see Policy.inferenceBegan). */
  private readonly watcher: InferenceWatcher | undefined;
  private readonly runServed: NextInfer;
  private readonly runControl: NextControl;
  readonly policies: readonly Policy[];

  constructor(
    readonly models: ModelManager,
    private readonly options: DataPlaneOptions,
  ) {
    this.policies = typeof options.policies === 'function' ? options.policies(this) : options.policies;
    // An outermost policy that only watches (observation) is called from the plane's own reaction.
    const outer = this.policies[0];
    if (outer?.inferenceBegan !== undefined && outer.inferenceSettled !== undefined) this.watcher = outer as InferenceWatcher;
    this.runInfer = composeInfer(this.watcher ? this.policies.slice(1) : this.policies, (ctx, request) => this.execute(ctx, request));
    this.runServed = composeInfer(
      this.policies.filter((p) => SERVED_END.has(p.name)),
      (ctx, request) => this.execute(ctx, request),
    );
    this.runControl = composeControl(this.policies, (_ctx, call) => Promise.resolve((call as PerformingCall)[PERFORM]()));
  }

  // ---- server state ----

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

  /** Resolves once no inference is in flight. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Whether the server should receive traffic now (no pipeline: for probes and watchers). */
  readiness(): Readiness {
    const failures = this.models.serving.failures();
    let ready = this.started && !this.draining && this.models.serving.allReady();
    for (const check of this.options.readinessChecks ?? []) if (ready && !check()) ready = false;
    const status = ready ? 'ready' : this.draining ? 'draining' : this.started ? 'not ready' : 'starting';
    return { ready, status, failures };
  }

  /** Whether a model (version) serves now, without a pipeline run; unknown models throw NOT_FOUND. */
  isModelReady(name: string, version?: string): boolean {
    return !this.draining && this.models.serving.isReady(name, version);
  }

  // ---- the pipeline ----

  /** Runs an inference through the pipeline. `ctx.model` (and optionally `ctx.version`) name the target. */
  infer(ctx: PipelineContext, request: InferenceRequest): Promise<InferenceResponse> {
    this.inFlight++;
    const watcher = this.watcher;
    const began = watcher === undefined ? 0 : watcher.inferenceBegan(ctx);
    // Counted off before the caller resumes. One reaction for the watcher and the count.
    return this.runInfer(ctx, request).then(
      (response) => {
        const thrown = this.settled(ctx, watcher, began, undefined);
        if (thrown !== undefined) throw thrown.error;
        return response;
      },
      (error: unknown) => {
        const thrown = this.settled(ctx, watcher, began, error);
        throw thrown === undefined ? error : thrown.error;
      },
    );
  }

  /**
   * Like `infer`, for a door that answers from callbacks: `answered` or `failed` runs in the
   * plane's own reaction to the answer (after the watcher and the in-flight count), one promise
   * and one microtask fewer per request than a `then` on `infer`'s promise. `state` is handed
   * back to them, so they can be shared by every request. Neither may throw.
   */
  inferTo<S>(ctx: PipelineContext, request: InferenceRequest, state: S, answered: (state: S, response: InferenceResponse) => void, failed: (state: S, error: unknown) => void): void {
    this.inFlight++;
    const watcher = this.watcher;
    const began = watcher === undefined ? 0 : watcher.inferenceBegan(ctx);
    this.runInfer(ctx, request).then(
      (response) => {
        const thrown = this.settled(ctx, watcher, began, undefined);
        if (thrown === undefined) answered(state, response);
        else failed(state, thrown.error);
      },
      (error: unknown) => {
        const thrown = this.settled(ctx, watcher, began, error);
        failed(state, thrown === undefined ? error : thrown.error);
      },
    );
  }

  /** Tells the watcher and the in-flight count an inference ended; what the watcher threw, if it did. */
  private settled(ctx: PipelineContext, watcher: InferenceWatcher | undefined, began: number, error: unknown): { error: unknown } | undefined {
    let thrown: { error: unknown } | undefined;
    if (watcher !== undefined) {
      try {
        watcher.inferenceSettled(ctx, began, error);
      } catch (e) {
        // As when the watcher ran as a policy: its failure is the request's.
        thrown = { error: e };
      }
    }
    this.inferenceEnded();
    return thrown;
  }

  private readonly inferenceEnded = (): void => {
    if (--this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  /**
   * Runs a request the server makes itself on a model version (a shadow copy, a step of an
   * ensemble): only the served end of the chain (version resolution, validation), not
   * admission, security, routing or observation, which the caller's own request went through.
   */
  inferServed(ctx: PipelineContext, request: InferenceRequest): Promise<InferenceResponse> {
    return this.runServed(ctx, request);
  }

  /** Runs any other operation through the pipeline; `perform` does the work once every policy agreed. */
  control<T>(ctx: PipelineContext, call: ControlCall, perform: () => T | Promise<T>): Promise<T> {
    (call as PerformingCall)[PERFORM] = perform;
    return this.runControl(ctx, call) as Promise<T>;
  }

  /**
   * Answers a request a door could not decode (malformed body or headers, unknown route): it
   * still passes admission, security and observation, so the caller gets the same treatment
   * (a caller without credentials learns nothing about its body) and the same log line.
   * Always rejects, with the error to send.
   */
  reject(ctx: PipelineContext, error: unknown): Promise<never> {
    return this.control(ctx, { action: 'request.rejected', write: false, ...(ctx.model !== undefined ? { model: ctx.model } : {}) }, () => {
      throw error;
    });
  }

  /**
   * The end of the inference chain: the served version's scheduler and workers. Not async, and
   * its handling of the answer runs in the version's own reaction (`finish`): no promise of its own.
   */
  private execute(ctx: PipelineContext, request: InferenceRequest): Promise<InferenceResponse> {
    const v = ctx.served;
    if (!v) return Promise.reject(new UnavailableError('no model version was resolved for this request'));
    try {
      this.options.inFlight?.(v.name, 1);
    } catch (error) {
      return Promise.reject(error);
    }
    return v.run(request, ctx, this.finish);
  }

  /** What `execute` does once the version answered or failed; shared by every request. */
  private readonly finish: RunContinuation<PipelineContext, InferenceResponse> = {
    answered: (ctx, result, v) => {
      this.options.inFlight?.(v.name, -1);
      const limit = this.options.maxResponseBytes ?? 64 * 1024 * 1024;
      const bytes = responseBytes(result.response.outputs);
      if (bytes > limit) {
        throw new InvalidInputError(`the answer would hold ${bytes} bytes of outputs, more than this server's limit of ${limit} (server.max_response_bytes); ask for fewer rows or outputs`);
      }
      ctx.outcome = { model: v.name, version: v.version, queueMs: result.queueNs / 1e6, computeMs: result.computeNs / 1e6, batchRows: result.batchRows };
      ctx.timings = { inputMs: result.inputNs / 1e6, inferMs: result.inferNs / 1e6 };
      return result.response;
    },
    failed: (_ctx, error, v) => {
      this.options.inFlight?.(v.name, -1);
      throw error;
    },
  };

  // ---- the reads and writes doors offer, each one call through the pipeline ----

  live(ctx: PipelineContext): Promise<boolean> {
    return this.control(ctx, { action: 'server.live', write: false }, () => true);
  }

  ready(ctx: PipelineContext): Promise<Readiness> {
    return this.control(ctx, { action: 'server.ready', write: false }, () => this.readiness());
  }

  startup(ctx: PipelineContext): Promise<boolean> {
    return this.control(ctx, { action: 'server.startup', write: false }, () => this.started);
  }

  metadata(ctx: PipelineContext): Promise<ServerMetadata> {
    return this.control(ctx, { action: 'server.metadata', write: false }, () => ({ name: 'inferd', version: pkg.version, extensions: SERVER_EXTENSIONS }));
  }

  modelReady(ctx: PipelineContext, name: string, version?: string): Promise<boolean> {
    return this.control(ctx, { action: 'model.ready', write: false, model: name, ...(version ? { version } : {}) }, () => this.isModelReady(name, version));
  }

  modelMetadata(ctx: PipelineContext, name: string, version?: string): Promise<ModelMetadata> {
    return this.control(ctx, { action: 'model.metadata', write: false, model: name, ...(version ? { version } : {}) }, () => this.metadataOf(name, version));
  }

  modelStatistics(ctx: PipelineContext, name?: string, version?: string): Promise<ModelStatistics[]> {
    return this.control(ctx, { action: 'model.stats', write: false, ...(name ? { model: name } : {}), ...(version ? { version } : {}) }, () => this.statisticsOf(name, version));
  }

  repositoryIndex(ctx: PipelineContext, readyOnly = false): Promise<RepositoryEntry[]> {
    return this.control(ctx, { action: 'repository.index', write: false }, () => this.models.index(readyOnly));
  }

  loadModel(ctx: PipelineContext, name: string): Promise<void> {
    return this.control(ctx, { action: 'model.load', write: true, model: name }, () => this.models.load(name));
  }

  unloadModel(ctx: PipelineContext, name: string): Promise<void> {
    return this.control(ctx, { action: 'model.unload', write: true, model: name }, () => this.models.unload(name));
  }

  private metadataOf(name: string, version?: string): ModelMetadata {
    if (!this.started && !this.models.serving.has(name)) throw new UnavailableError(`the server is starting: model '${name}' is not loaded yet`, 1);
    const { entry, version: v } = this.models.serving.find(name, version);
    if (!v) {
      const why = entry.lazyPending ? 'it is not loaded yet and loads on its first inference request' : (entry.reason ?? `it is ${entry.state.toLowerCase()}`);
      throw new UnavailableError(`model '${name}' has no loaded version: ${why}`, 1);
    }
    const versions = this.models.serving
      .versionsOf(name)
      .map((x) => x.version)
      .sort((a, b) => Number(a) - Number(b));
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

  private statisticsOf(name?: string, version?: string): ModelStatistics[] {
    const serving = this.models.serving;
    if (name === undefined || name === '') return serving.loaded().map((v) => v.stats.snapshot());
    const versions = serving.versionsOf(name);
    if (versions.length === 0) {
      serving.find(name); // throws NOT_FOUND for an unknown model
      return [];
    }
    const chosen = version ? versions.filter((v) => v.version === version) : versions;
    if (version && chosen.length === 0) throw new ModelNotFoundError(name, version);
    return chosen.map((v) => v.stats.snapshot());
  }
}

function responseBytes(outputs: readonly Tensor[]): number {
  let total = 0;
  for (const t of outputs) total += rawByteLength(t.datatype, t.data);
  return total;
}

/** A name a request must carry; refused with INVALID_ARGUMENT when empty. */
export function requireName(name: string | undefined, field: string): string {
  if (name === undefined || name === '') throw new InvalidInputError(`the request has no '${field}'`);
  return name;
}
