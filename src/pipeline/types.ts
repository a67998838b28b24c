/**
 * The request pipeline's contracts. Every request from every front door (REST, gRPC, admin,
 * Kafka, batch) runs through one ordered chain of policies in the data plane. A policy is one
 * file with one job: it can inspect a call, refuse it (throw an InferdError), answer it itself
 * (a cache), re-route it (set `ctx.version`), or observe the answer. Order lives in
 * src/pipeline/chain.ts.
 *
 * Two kinds of call go through the chain:
 * - inference (`infer`): the hook receives the decoded request and a `next` that runs the rest
 *   of the chain and, at its end, the model version's scheduler and workers;
 * - everything else (`control`): metadata, readiness, statistics, repository and admin
 *   operations; the hook sees what is asked (`ControlCall`) and a `next` that performs it.
 * A policy implements the hooks it cares about; the others pass straight through.
 */
import type {
  InferenceRequest,
  InferenceResponse,
  ModelMetadata,
  ModelStatistics,
  RepositoryEntry,
  RequestContext,
  ServerMetadata,
  TensorMetadata,
} from '../core/types.js';
import type { ModelVersion } from '../models/model-version.js';

/** The context inside the pipeline: what a door knows, plus what policies have decided. */
export interface PipelineContext extends RequestContext {
  /** The model version that will answer, once version resolution has run. */
  served?: ModelVersion;
  /**
   * Decodes the request once the served version's inputs are known (KServe V1 `instances`,
   * whose tensors take their names and datatypes from the model). Run by version resolution.
   */
  decode?: (inputs: TensorMetadata[]) => InferenceRequest;
  /** The door's name for what was called (REST route pattern, gRPC method): a metric label. */
  route?: string;
  /** Finer timings of the execution, for tracing (performance.now() milliseconds). */
  timings?: { queuedAt?: number; inputMs: number; inferMs: number };
  /** True once the observation policy has recorded this request (so a door does not again). */
  observed?: boolean;
}

export type NextInfer = (ctx: PipelineContext, request: InferenceRequest) => Promise<InferenceResponse>;
export type NextControl = (ctx: PipelineContext, call: ControlCall) => Promise<unknown>;

/** A non-inference operation, described for policies (authorisation, audit, admission). */
export interface ControlCall {
  /**
   * What is asked, as `area.verb`: `server.metadata`, `model.metadata`, `model.ready`,
   * `model.stats`, `repository.index`, `model.load`, `model.unload`, `registry.alias`,
   * `registry.stage`, `registry.register`, `registry.delete`, `traffic.set`, `keys.create`...
   */
  action: string;
  /** True when the call changes state (load, unload, registry or traffic writes). */
  write: boolean;
  /** The model it concerns, when it concerns one. */
  model?: string;
  version?: string;
  /** Anything else worth an audit record (alias name, stage, new weights...). No secrets. */
  details?: Record<string, unknown>;
}

export interface Policy {
  /** Short name, used in logs and in the chain's order. */
  readonly name: string;
  infer?(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse>;
  control?(ctx: PipelineContext, call: ControlCall, next: NextControl): Promise<unknown>;
  /**
   * A policy that only watches inferences from outside (when they start, how they end) may say
   * so with this pair, doing what its `infer` does. First in the chain, the data plane then calls
   * them itself, in the reaction it has anyway, instead of running `infer` and its own `then`.
   * `inferenceSettled` gets what `inferenceBegan` returned, and the error when the chain failed.
   */
  inferenceBegan?(ctx: PipelineContext): number;
  inferenceSettled?(ctx: PipelineContext, began: number, error: unknown): void;
}

export interface Readiness {
  ready: boolean;
  status: 'ready' | 'starting' | 'draining' | 'not ready';
  failures: Array<{ name: string; reason: string }>;
}

/**
 * What a front door may call: the data plane's API (pipeline/dataplane.ts implements it). Each
 * request method runs one call through the pipeline; `readiness` and `isModelReady` read state
 * without one, for health watchers that poll.
 */
export interface ServingPlane {
  readonly isDraining: boolean;
  readiness(): Readiness;
  isModelReady(name: string, version?: string): boolean;
  infer(ctx: PipelineContext, request: InferenceRequest): Promise<InferenceResponse>;
  control<T>(ctx: PipelineContext, call: ControlCall, perform: () => T | Promise<T>): Promise<T>;
  reject(ctx: PipelineContext, error: unknown): Promise<never>;
  live(ctx: PipelineContext): Promise<boolean>;
  ready(ctx: PipelineContext): Promise<Readiness>;
  startup(ctx: PipelineContext): Promise<boolean>;
  metadata(ctx: PipelineContext): Promise<ServerMetadata>;
  modelReady(ctx: PipelineContext, name: string, version?: string): Promise<boolean>;
  modelMetadata(ctx: PipelineContext, name: string, version?: string): Promise<ModelMetadata>;
  modelStatistics(ctx: PipelineContext, name?: string, version?: string): Promise<ModelStatistics[]>;
  repositoryIndex(ctx: PipelineContext, readyOnly?: boolean): Promise<RepositoryEntry[]>;
  loadModel(ctx: PipelineContext, name: string): Promise<void>;
  unloadModel(ctx: PipelineContext, name: string): Promise<void>;
}
