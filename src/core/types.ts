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

/** Who is calling, once authentication has run. */
export interface Identity {
  /** Stable principal: an API key id, a JWT `sub`, a certificate subject. */
  subject: string;
  method: 'api_key' | 'jwt' | 'mtls' | 'anonymous';
  roles: string[];
}

/** The door a request came through; bounded, so it is safe as a metric label. */
export type DoorName = 'rest.v2' | 'rest.v1' | 'rest.binary' | 'grpc.unary' | 'grpc.stream' | 'admin' | 'kafka' | 'batch' | 'internal';

/** What the data plane knows about a caller and its request, whatever door it came through. */
export interface RequestContext {
  /** Correlation id: from X-Correlation-ID / X-Request-ID / traceparent / gRPC metadata, or generated. */
  requestId: string;
  /** The header or metadata key the id came under; the answer echoes it under the same key. */
  requestIdKey?: string;
  protocol: 'rest' | 'grpc' | 'kafka' | 'batch' | 'internal';
  door?: DoorName;
  /** The model asked for, and the version (asked for, or chosen by routing). */
  model?: string;
  version?: string;
  /** Absolute deadline (Date.now() milliseconds); undefined means the configured default. */
  deadline?: number;
  /** Lower number = higher priority, as Triton; undefined means the model's default. */
  priority?: number;
  /** Set when the caller goes away; queued work is then dropped. An AbortSignal fits. */
  signal?: Cancellation;
  /** Authenticated principal, when authentication is on. */
  identity?: Identity;
  /** W3C trace context of the caller (an OpenTelemetry Context), when tracing is on. */
  trace?: unknown;
  /** Reads a request header or gRPC metadata value by lower-case name (auth, sticky routing). */
  header?: (name: string) => string | undefined;
  /** Headers / metadata that policies add to the answer (variant, rate-limit state...). */
  responseHeaders?: Record<string, string>;
  /** The traffic variant that served the request, when a traffic policy routed it. */
  variant?: string;
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
