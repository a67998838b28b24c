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
import type { RouteDecision, TrafficService } from './service.js';
import type { ShadowMirror } from './shadow.js';

export const VARIANT_HEADER = 'x-inferd-variant';

/** Failures that say something about the version (not about the caller's request). */
function versionFailed(error: unknown): boolean {
  if (!(error instanceof InferdError)) return true;
  return error.reason === 'runtime_error' || error.reason === 'internal' || error.reason === 'timeout' || error.reason === 'unavailable';
}

export function routingPolicy(traffic: TrafficService, now: () => number = () => performance.now()): Policy {
  return {
    name: 'routing',
    // Not async: one `then` costs fewer allocations per request than an async frame and its await.
    infer(ctx: RequestContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
      const model = ctx.model;
      let decision: RouteDecision | undefined;
      let shadow: ShadowMirror | undefined;
      let copy: InferenceRequest | undefined;
      let started = 0;
      let answer: Promise<InferenceResponse>;
      // A throw anywhere before the answer is a rejection, as callers of a policy expect.
      try {
        if (model === undefined) return next(ctx, request);
        decision = ctx.version === undefined ? traffic.route(model, ctx, request) : undefined;
        shadow = ctx.version === undefined ? traffic.shadowOf(model) : undefined;
        if (decision !== undefined) {
          ctx.version = decision.version;
          ctx.variant = decision.variant;
          (ctx.responseHeaders ??= {})[VARIANT_HEADER] = decision.variant;
        }
        copy = shadow?.pick(request);
        started = now();
        answer = next(ctx, request);
      } catch (error) {
        return Promise.reject(error);
      }
      return answer.then(
        (response) => {
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
        (error: unknown) => {
          if (ctx.version !== undefined) traffic.observe(model, ctx.version, versionFailed(error), now() - started);
          throw error;
        },
      );
    },
  };
}
