/**
 * Ensembles as a pipeline policy (chain slot `cache`): a version whose runtime is `ensemble`
 * is answered by running its steps in order, each as an in-process call through the data plane
 * to its own model — so each step is validated, batched by its own scheduler and counted in
 * its own metrics — with tensors passed by reference between steps, never re-encoded.
 */
import { InvalidInputError, RuntimeError } from '../core/errors.js';
import type { InferenceRequest, InferenceResponse, Tensor } from '../core/types.js';
import { copyTensor } from '../resilience/copy.js';
import { innerContext } from './inner-call.js';
import type { NextInfer, PipelineContext, Policy, ServingPlane } from '../pipeline/types.js';

export class EnsemblePolicy implements Policy {
  readonly name = 'ensemble';

  constructor(private readonly plane: Pick<ServingPlane, 'infer'>) {}

  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    // Most models do not use this policy: pass them through without an async frame.
    if (!(ctx.served?.config.runtime === 'ensemble')) return next(ctx, request);
    return this.apply(ctx, request, next);
  }

  private async apply(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const v = ctx.served;
    const spec = v?.config.ensemble;
    if (!v || v.config.runtime !== 'ensemble' || !spec) return next(ctx, request);
    const started = performance.now();
    const tensors = new Map<string, Tensor>();
    for (const t of request.inputs) tensors.set(t.name, t);
    for (const declared of v.inputs) {
      const t = tensors.get(declared.name);
      if (!t) throw new InvalidInputError(`ensemble '${v.name}' needs input '${declared.name}'`);
      if (t.datatype !== declared.datatype) throw new InvalidInputError(`ensemble '${v.name}': input '${declared.name}' must be ${declared.datatype}, got ${t.datatype}`);
    }
    // Reads still to come of each tensor: a step's run may take its inputs' buffers, so a
    // tensor read again later (or answered) is handed over as a copy.
    const readsLeft = new Map<string, number>();
    for (const step of spec.steps) for (const source of Object.values(step.inputs)) readsLeft.set(source, (readsLeft.get(source) ?? 0) + 1);
    for (const out of v.outputs) readsLeft.set(out.name, (readsLeft.get(out.name) ?? 0) + 1);
    try {
      for (const step of spec.steps) {
        const inputs = Object.entries(step.inputs).map(([input, source]) => {
          const left = (readsLeft.get(source) ?? 1) - 1;
          readsLeft.set(source, left);
          const t = tensors.get(source)!;
          return { ...(left > 0 ? copyTensor(t) : t), name: input };
        });
        const child = innerContext(ctx, step.model, step.version);
        const answer = await this.plane.infer(child, { inputs, outputs: Object.keys(step.outputs).map((name) => ({ name })) });
        for (const out of answer.outputs) {
          const as = step.outputs[out.name];
          if (as !== undefined) tensors.set(as, { ...out, name: as });
        }
      }
      const wanted = request.outputs && request.outputs.length > 0 ? request.outputs.map((o) => o.name) : v.outputs.map((o) => o.name);
      const outputs = wanted.map((name) => {
        const t = tensors.get(name);
        if (!t || !v.outputs.some((o) => o.name === name)) {
          throw t ? new InvalidInputError(`ensemble '${v.name}' has no output '${name}'`) : new RuntimeError(`ensemble '${v.name}': no step produced output '${name}'`);
        }
        const { parameters: _dropped, ...plain } = t;
        return plain;
      });
      const totalNs = (performance.now() - started) * 1e6;
      const rows = v.config.max_batch_size === 0 ? 1 : (request.inputs[0]?.shape[0] ?? 1);
      v.stats.recordSuccess(rows, totalNs, 0, { inputNs: 0, inferNs: totalNs, outputNs: 0 });
      const response: InferenceResponse = { model_name: v.name, model_version: v.version, outputs };
      if (request.id !== undefined) response.id = request.id;
      return response;
    } catch (error) {
      v.stats.recordFailure((performance.now() - started) * 1e6);
      throw error;
    }
  }
}
