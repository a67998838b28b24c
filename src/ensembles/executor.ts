/**
 * An ensemble version's executor: the steps run in the request pipeline (ensembles/policy.ts),
 * each through its own model's scheduler, so this only states the declared signature. A batch
 * never reaches it unless the ensemble policy is missing from the chain.
 */
import { UnavailableError } from '../core/errors.js';
import type { Tensor, TensorMetadata } from '../core/types.js';
import type { ModelConfig } from '../models/config.js';
import type { RunTimings } from '../runtimes/types.js';
import { checkEnsemble } from './plan.js';

export class EnsembleExecutor {
  constructor(private readonly config: ModelConfig) {}

  ready(): Promise<{ inputs: TensorMetadata[]; outputs: TensorMetadata[] }> {
    checkEnsemble(this.config);
    return Promise.resolve({ inputs: this.config.inputs ?? [], outputs: this.config.outputs ?? [] });
  }

  infer(_inputs: Tensor[], _outputs: string[]): Promise<{ outputs: Tensor[]; timings: RunTimings }> {
    return Promise.reject(new UnavailableError(`ensemble '${this.config.name}' runs through the request pipeline, which has no ensemble policy here`));
  }

  abortRunning(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}
