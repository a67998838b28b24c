/**
 * The routing policy of the request pipeline. It sits after admission (auth, limits) and
 * before the cache and validation, i.e. before the data plane resolves a version:
 * - a request that names a version is served by that version, untouched;
 * - a request for a model with a traffic policy and no version gets `ctx.version` and
 *   `ctx.variant` from the policy and answers with an `x-inferd-variant` header;
 * - every request is observed by the version that answered (failed or not, latency) for canary
 *   analysis and the analysis endpoint; a routed request's variant is remembered for feedback;
 * - when the model has a shadow, a share of requests is also mirrored, after the answer is
 *   known and off the caller's path.
 */
import { InferdError } from '../core/errors.js';
import type { InferenceRequest, InferenceResponse, RequestContext } from '../core/types.js';
import type { NextInfer, Policy } from '../pipeline/types.js';
import type { TrafficService } from './service.js';

export const VARIANT_HEADER = 'x-inferd-variant';

/** Failures that say something about the version (not about the caller's request). */
function versionFailed(error: unknown): boolean {
  if (!(error instanceof InferdError)) return true;
  return error.reason === 'runtime_error' || error.reason === 'internal' || error.reason === 'timeout' || error.reason === 'unavailable';
}

export function routingPolicy(traffic: TrafficService, now: () => number = () => performance.now()): Policy {
  return {
    name: 'routing',
    async infer(ctx: RequestContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
      const model = ctx.model;
      if (model === undefined) return next(ctx, request);
      const decision = ctx.version === undefined ? traffic.route(model, ctx, request) : undefined;
      const shadow = ctx.version === undefined ? traffic.shadowOf(model) : undefined;
      if (decision !== undefined) {
        ctx.version = decision.version;
        ctx.variant = decision.variant;
        (ctx.responseHeaders ??= {})[VARIANT_HEADER] = decision.variant;
      }
      const copy = shadow?.pick(request);
      const started = now();
      let response: InferenceResponse;
      try {
        response = await next(ctx, request);
      } catch (error) {
        if (ctx.version !== undefined) traffic.observe(model, ctx.version, versionFailed(error), now() - started);
        throw error;
      }
      const elapsed = now() - started;
      // Every answered request is observed by the version that answered: canary analysis and
      // the analysis endpoint (Argo Rollouts web metrics) read these.
      const version = response.model_version || ctx.version;
      if (version !== undefined) traffic.observe(model, version, false, elapsed);
      if (decision !== undefined) {
        traffic.noteAssignment({ requestId: ctx.requestId, model, version: version ?? decision.version, variant: decision.variant, at: traffic.now() });
      }
      if (copy !== undefined) shadow!.submit(ctx, copy, response, elapsed);
      return response;
    },
  };
}
