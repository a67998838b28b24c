/**
 * What runs a version's batches. The worker pool (onnx, js) is one implementation; the remote
 * client (another inference server) is another; an ensemble's steps run in the pipeline, so its
 * executor only states the declared signature.
 */
import { UnavailableError, type InferdError } from '../core/errors.js';
import type { Tensor, TensorMetadata } from '../core/types.js';
import { EnsembleExecutor } from '../ensembles/executor.js';
import { RemoteExecutor } from '../runtimes/remote/executor.js';
import { GrpcRemoteExecutor } from '../runtimes/remote/grpc-executor.js';
import type { RunTimings } from '../runtimes/types.js';
import type { ModelConfig } from './config.js';

export interface VersionExecutor {
  /** Resolves with the signature once the version can run. */
  ready(): Promise<{ inputs: TensorMetadata[]; outputs: TensorMetadata[] }>;
  infer(inputs: Tensor[], outputs: string[], requestIds?: string[]): Promise<{ outputs: Tensor[]; timings: RunTimings }>;
  /** Fails the runs in progress with `reason` (the shutdown deadline passed). */
  abortRunning(reason: InferdError): void;
  close(graceMs?: number): Promise<void>;
}

/** The executor of a runtime that does not use worker threads; undefined for onnx and js. */
export function createExecutor(config: ModelConfig): VersionExecutor | undefined {
  if (config.runtime === 'remote') {
    if (!config.remote) throw new UnavailableError(`model '${config.name}' has runtime remote but no 'remote' section`);
    if (config.remote.url.startsWith('grpc://')) return new GrpcRemoteExecutor(config.name, config.remote, config.execution.timeout_ms);
    return new RemoteExecutor(config.name, config.remote, config.execution.timeout_ms);
  }
  if (config.runtime === 'ensemble') return new EnsembleExecutor(config);
  return undefined;
}
