/**
 * The shared request and response types every front door decodes into and encodes from.
 * Nothing here knows about HTTP, gRPC or Kafka.
 */
import type { Datatype, TensorData } from './datatypes.js';

export type Parameters = Record<string, string | number | boolean | bigint>;

/** One named tensor: the unit every runtime consumes and produces. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
  parameters?: Parameters;
}

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferenceRequest {
  id?: string;
  inputs: Tensor[];
  /** Outputs to return; all outputs when absent or empty. */
  outputs?: RequestedOutput[];
  parameters?: Parameters;
}

export interface InferenceResponse {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: Parameters;
  outputs: Tensor[];
}

/** Read by the scheduler before it runs a request; an AbortSignal is one. */
export interface Cancellation {
  readonly aborted: boolean;
}

/** What the data plane knows about a caller and its request, whatever door it came through. */
export interface RequestContext {
  /** Correlation id: from X-Request-ID / X-Correlation-ID / traceparent, or generated. */
  requestId: string;
  protocol: 'rest' | 'grpc' | 'kafka' | 'batch' | 'internal';
  /** Absolute deadline (Date.now() milliseconds); undefined means the configured default. */
  deadline?: number;
  /** Lower number = higher priority, as Triton; undefined means the model's default. */
  priority?: number;
  /** Set when the caller goes away; queued work is then dropped. An AbortSignal fits. */
  signal?: Cancellation;
  /** Authenticated principal, when authentication is on. */
  identity?: string;
  /** W3C trace context of the caller (an OpenTelemetry Context), when tracing is on. */
  trace?: unknown;
  /** Filled in by the data plane for access logs: how the request was scheduled. */
  outcome?: { model: string; version: string; queueMs: number; computeMs: number; batchRows: number };
}

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  /** -1 marks a dynamic dimension. */
  shape: number[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  parameters?: Parameters;
}

/** One entry of the repository index (Triton's repository extension). */
export interface RepositoryEntry {
  name: string;
  version?: string;
  state: 'UNAVAILABLE' | 'LOADING' | 'READY' | 'UNLOADING' | 'FAILED';
  reason?: string;
}

/** Count and cumulative nanoseconds, as in Triton's statistics extension. */
export interface StatDuration {
  count: number;
  ns: number;
}

export interface ModelStatistics {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: {
    success: StatDuration;
    fail: StatDuration;
    queue: StatDuration;
    compute_input: StatDuration;
    compute_infer: StatDuration;
    compute_output: StatDuration;
    cache_hit: StatDuration;
    cache_miss: StatDuration;
  };
  batch_stats: Array<{
    batch_size: number;
    compute_input: StatDuration;
    compute_infer: StatDuration;
    compute_output: StatDuration;
  }>;
}

/**
 * The in-process API every front door calls, and nothing else. REST, gRPC, Kafka, batch jobs and
 * tests all go through it, so policies (validation, batching, limits, metrics) live once.
 */
export interface InferenceService {
  live(): boolean;
  ready(): boolean;
  metadata(): ServerMetadata;
  /** Throws ModelNotFoundError when the model or version does not exist. */
  modelReady(name: string, version?: string): boolean;
  /** Throws ModelNotFoundError when the model or version does not exist. */
  modelMetadata(name: string, version?: string): ModelMetadata;
  infer(name: string, version: string | undefined, request: InferenceRequest, context: RequestContext): Promise<InferenceResponse>;
  repositoryIndex(readyOnly?: boolean): Promise<RepositoryEntry[]>;
  loadModel(name: string): Promise<void>;
  unloadModel(name: string): Promise<void>;
  /** Statistics of all models when name is absent. */
  modelStatistics(name?: string, version?: string): ModelStatistics[];
}
