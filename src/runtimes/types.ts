/**
 * The one interface every runtime implements. Runtimes live inside worker threads: nothing here
 * may assume the main thread, and `run` may block its thread (onnxruntime-node's does).
 */
import type { Tensor, TensorMetadata } from '../core/types.js';

export type RuntimeKind = 'onnx' | 'js';

export interface OnnxSessionOptions {
  intraOpThreads: number;
  interOpThreads: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  executionProviders: string[];
  /** Memory-arena and pattern options trade memory for speed; both on by default in onnxruntime. */
  enableCpuMemArena: boolean;
  enableMemPattern: boolean;
  allowSpinning: boolean;
}

/** Everything a worker needs to load one model version (sent as workerData: plain data only). */
export interface RuntimeSpec {
  kind: RuntimeKind;
  model: string;
  version: string;
  /** Absolute path of the artifact: model.onnx, or the JavaScript module for the js runtime. */
  path: string;
  onnx: OnnxSessionOptions;
  /** Free-form parameters from the model config, given to js models' load(). */
  parameters: Record<string, unknown>;
  /** Declared signature, if the config has one; js models must declare theirs or export it. */
  inputs?: TensorMetadata[];
  outputs?: TensorMetadata[];
  warmup: WarmupSpec[];
  /** Level of the worker's own log lines (pino level name). */
  logLevel: string;
}

export interface WarmupSpec {
  name: string;
  batchSize: number;
  count: number;
  /** Per input: 'zero', 'random', or explicit flat values. Inputs not named are zero-filled. */
  inputs: Record<string, { kind: 'zero' | 'random' } | { kind: 'data'; values: Array<number | string | boolean> }>;
  /** Sizes for dynamic non-batch dimensions (e.g. a sequence length); default 1. */
  dims: Record<string, number[]>;
}

export interface RunTimings {
  /** Nanoseconds spent preparing inputs, running the model and converting outputs. */
  inputNs: number;
  inferNs: number;
  outputNs: number;
}

/** What a runtime knows about the requests of one run: for the model's own logs. */
export interface RunContext {
  requestIds: readonly string[];
  log: import('pino').Logger;
}

export interface ModelRuntime {
  readonly inputs: TensorMetadata[];
  readonly outputs: TensorMetadata[];
  /** Runs one (possibly batched) request; returns the outputs named, or all when empty. */
  run(inputs: Tensor[], outputNames: readonly string[], context?: RunContext): Promise<{ outputs: Tensor[]; timings: RunTimings }>;
  close(): Promise<void>;
}
