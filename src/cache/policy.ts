/**
 * The prediction cache as a pipeline policy (chain slot `cache`, after version resolution, so
 * the key names the version that answers: a new version never meets an old version's answer).
 * Only versions whose config has `cache:` take part — deterministic models, by the operator's
 * word. Answers that came from a fallback are passed on and never stored.
 */
import type { InferenceRequest, InferenceResponse, Parameters } from '../core/types.js';
import { OWN_PARAMETERS } from '../models/model-version.js';
import type { NextInfer, PipelineContext, Policy } from '../pipeline/types.js';
import { isFallbackAnswer } from '../resilience/fallback.js';
import { decodeAnswer, encodeAnswer } from './entry.js';
import { cacheKey } from './key.js';
import type { PredictionCache } from './prediction-cache.js';

export const CACHE_HEADER = 'x-inferd-cache';

export class CachePolicy implements Policy {
  readonly name = 'cache';

  constructor(readonly cache: PredictionCache) {}

  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    // Most models do not use this policy: pass them through without an async frame.
    if (!(ctx.served?.config.cache?.enabled)) return next(ctx, request);
    return this.apply(ctx, request, next);
  }

  private async apply(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const v = ctx.served;
    const settings = v?.config.cache;
    if (!v || !settings?.enabled) return next(ctx, request);
    const started = performance.now();
    const key = cacheKey(v.name, v.version, request);
    let own: InferenceResponse | undefined;
    let lookup = 'miss' as 'memory' | 'redis' | 'coalesced' | 'miss';
    const stored = await this.cache.getOrCompute(
      key,
      v.name,
      settings.ttl_seconds * 1000,
      async () => {
        const lookupNs = (performance.now() - started) * 1e6;
        const response = await next(ctx, request);
        own = response;
        if (isFallbackAnswer(response)) return undefined;
        const t = performance.now();
        const encoded = encodeAnswer({ ...response, outputs: response.outputs });
        v.stats.recordCacheMiss(lookupNs + (performance.now() - t) * 1e6);
        return encoded;
      },
      (where) => (lookup = where),
    );
    if (own) {
      ctx.responseHeaders ??= {};
      ctx.responseHeaders[CACHE_HEADER] = 'miss';
      return own;
    }
    // A coalesced request whose leader's answer was not cacheable runs on its own.
    if (stored === undefined) return next(ctx, request);
    const answer = decodeAnswer(stored);
    const rows = v.config.max_batch_size === 0 ? 1 : (request.inputs[0]?.shape[0] ?? 1);
    v.stats.recordCacheHit(rows, (performance.now() - started) * 1e6);
    ctx.responseHeaders ??= {};
    ctx.responseHeaders[CACHE_HEADER] = lookup === 'coalesced' ? 'coalesced' : 'hit';
    const response: InferenceResponse = { model_name: v.name, model_version: v.version, outputs: answer.outputs };
    if (request.id !== undefined) response.id = request.id;
    const echoed = echoedParameters(request.parameters);
    if (echoed) response.parameters = echoed;
    return response;
  }
}

/** The request parameters a model version echoes in its answer (model-version.ts does the same). */
function echoedParameters(params: Parameters | undefined): Parameters | undefined {
  if (!params) return undefined;
  let out: Parameters | undefined;
  for (const key in params) {
    if (OWN_PARAMETERS.has(key)) continue;
    (out ??= {})[key] = params[key]!;
  }
  return out;
}
