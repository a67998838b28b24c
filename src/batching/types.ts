import type { Tensor } from '../core/types.js';
import type { RunTimings } from '../runtimes/types.js';

/** How inputs with a variable non-batch dimension may share a batch. */
export type RaggedPolicy = { kind: 'equal_shape' } | { kind: 'pad'; value: number };

export interface DynamicBatchingOptions {
  maxQueueDelayMicroseconds: number;
  preferredBatchSizes: number[];
}

export interface SchedulerOptions {
  model: string;
  version: string;
  /** Largest number of rows in one execution; 0 means the model has no batch dimension. */
  maxBatchSize: number;
  /** Absent: each request runs alone (still queued for a free instance). */
  dynamicBatching?: DynamicBatchingOptions;
  instances: number;
  /** Requests waiting beyond this are rejected at once with 503 and Retry-After. */
  maxQueueSize: number;
  /** Default time a request may wait in the queue before it is rejected, never run; 0 = none. */
  defaultQueueTimeoutMs: number;
  /** Priority levels 1..priorityLevels; 1 is the highest, as in Triton. */
  priorityLevels: number;
  defaultPriority: number;
  /** Per input name; inputs not listed batch only with requests of equal shape. */
  ragged: Record<string, RaggedPolicy>;
}

/** Runs one formed batch on a model instance. */
/** `requestIds` are the correlation ids of the requests in the batch, for the worker's logs. */
export type BatchExecutor = (inputs: Tensor[], outputs: string[], requestIds: string[]) => Promise<{ outputs: Tensor[]; timings: RunTimings }>;

/**
 * Runs several requests, each on its own (no batching), on one model instance in one hand-off;
 * answers each with its result or its own error, or rejects when the whole hand-off failed.
 */
export type EachExecutor = (
  runs: Array<{ inputs: Tensor[]; outputs: string[]; requestIds: string[] }>,
) => Promise<Array<{ outputs: Tensor[]; timings: RunTimings } | Error>>;

export interface ExecutionRecord {
  batchRows: number;
  requests: number;
  queueNs: number[];
  timings: RunTimings;
  /** Requests still waiting when this execution finished. */
  queued: number;
}

export interface SchedulerObserver {
  onExecution(record: ExecutionRecord, outputs: Tensor[]): void;
  onRejected(reason: 'queue_full' | 'timeout' | 'cancelled'): void;
}

export interface ScheduledResult {
  outputs: Tensor[];
  queueNs: number;
  timings: RunTimings;
  batchRows: number;
}
