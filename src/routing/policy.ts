/**
 * The routing policy of the request pipeline. It sits after admission (auth, limits) and
 * before the cache and validation, i.e. before the data plane resolves a version:
 * - a request that names a version is served by that version, untouched;
 * - a request for a model with a traffic policy and no version gets `ctx.version` and
 *   `ctx.variant` from the policy and answers with an `x-inferd-variant` header;
 * - routed requests are observed (failed or not, latency) for canary analysis, and their
 *   variant is remembered for joining feedback;
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
      if (model === undefined || ctx.version !== undefined) return next(ctx, request);
      const decision = traffic.route(model, ctx, request);
      const shadow = traffic.shadowOf(model);
      if (decision === undefined && shadow === undefined) return next(ctx, request);
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
        if (decision !== undefined) traffic.observe(model, decision.version, versionFailed(error), now() - started);
        throw error;
      }
      const elapsed = now() - started;
      if (decision !== undefined) {
        traffic.observe(model, decision.version, false, elapsed);
        traffic.noteAssignment({ requestId: ctx.requestId, model, version: response.model_version || decision.version, variant: decision.variant, at: traffic.now() });
      }
      if (copy !== undefined) shadow!.submit(ctx, copy, response, elapsed);
      return response;
    },
  };
}
