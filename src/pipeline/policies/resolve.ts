/**
 * Version resolution: picks the model version that answers (the one asked for, the one routing
 * chose, or the latest ready one) and, for a lazy model, loads it on its first inference
 * request (concurrent first requests share one load). Requests whose inputs can only be decoded
 * against the model's signature (KServe V1 `instances`) are decoded here, once it is known.
 */
import { InvalidInputError, UnavailableError } from '../../core/errors.js';
import type { InferenceRequest, InferenceResponse } from '../../core/types.js';
import type { ModelManager } from '../../models/manager.js';
import type { NextInfer, PipelineContext, Policy } from '../types.js';

export class ResolvePolicy implements Policy {
  readonly name = 'resolve';

  constructor(
    private readonly manager: ModelManager,
    /** Until the initial loads are done, a model not known yet may still be on its way: 503, not 404. */
    private readonly isStarted: () => boolean = () => true,
  ) {}

  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const name = ctx.model;
    if (name === undefined || name === '') throw new InvalidInputError('the request names no model');
    if (!this.isStarted() && !this.manager.serving.has(name)) throw new UnavailableError(`the server is starting: model '${name}' is not loaded yet`, 1);
    if (this.manager.serving.isLazyPending(name)) return this.manager.ensureLoaded(name).then(() => this.serve(ctx, request, next));
    return this.serve(ctx, request, next);
  }

  private serve(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const served = this.manager.serving.resolve(ctx.model!, ctx.version);
    ctx.served = served;
    ctx.version = served.version;
    if (ctx.decode) request = ctx.decode(served.inputs);
    return next(ctx, request);
  }
}
