/**
 * Resilience as a pipeline policy (chain slot `cache`, after the cache so a hit costs nothing):
 * for a version whose config has `resilience:`, the rest of the chain (validation, the
 * scheduler, the worker pool or the remote server) runs under its VersionGuard, and a failure
 * that is the callee's — an error, a timeout, an open circuit — is answered by the fallback
 * when one is configured. Caller errors (bad input) and bulkhead refusals are passed on.
 */
import type { Logger } from 'pino';
import { toInferdError } from '../core/errors.js';
import type { InferenceRequest, InferenceResponse, Tensor } from '../core/types.js';
import type { ModelVersion } from '../models/model-version.js';
import { innerContext } from '../ensembles/inner-call.js';
import type { NextInfer, PipelineContext, Policy, ServingPlane } from '../pipeline/types.js';
import { consumesInputs, copyRequest } from './copy.js';
import { markFallback, staticOutputs } from './fallback.js';
import { VersionGuard } from './guard.js';
import type { ResilienceMetrics } from './metrics.js';

export class ResiliencePolicy implements Policy {
  readonly name = 'resilience';
  private readonly guards = new WeakMap<ModelVersion, VersionGuard>();
  private readonly defaults = new WeakMap<ModelVersion, Tensor[]>();

  constructor(
    private readonly plane: Pick<ServingPlane, 'infer'>,
    private readonly metrics: ResilienceMetrics,
    private readonly logger?: Logger,
  ) {}

  /** The guard of a served version (created on its first request). */
  guardOf(v: ModelVersion): VersionGuard | undefined {
    const config = v.config.resilience;
    if (!config) return undefined;
    let guard = this.guards.get(v);
    if (!guard) {
      guard = new VersionGuard(v.name, v.version, config, this.metrics, this.logger);
      this.guards.set(v, guard);
    }
    return guard;
  }

  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    // Most models do not use this policy: pass them through without an async frame.
    if (!(ctx.served?.config.resilience)) return next(ctx, request);
    return this.apply(ctx, request, next);
  }

  private async apply(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const v = ctx.served;
    const guard = v ? this.guardOf(v) : undefined;
    if (!v || !guard) return next(ctx, request);
    const callerDeadline = ctx.deadline;
    const r = v.config.resilience!;
    // The request may be sent again (retry, fallback): keep it whole if a run would consume it.
    const resend = (r.retry !== undefined || r.fallback !== undefined) && consumesInputs(v.config.runtime);
    try {
      return await guard.run((attemptDeadline) => {
        // Queued work of an attempt past its timeout is dropped by the scheduler.
        const d = attemptDeadline === undefined ? callerDeadline : callerDeadline === undefined ? attemptDeadline : Math.min(callerDeadline, attemptDeadline);
        if (d !== undefined) ctx.deadline = d;
        return next(ctx, resend ? copyRequest(request) : request);
      });
    } catch (error) {
      const e = toInferdError(error);
      const fallback = v.config.resilience?.fallback;
      const calleeFault = e.code === 'UNAVAILABLE' || e.code === 'DEADLINE_EXCEEDED' || e.code === 'INTERNAL';
      // No stand-in for a caller who has stopped waiting.
      const callerGone = ctx.signal?.aborted === true || (callerDeadline !== undefined && Date.now() >= callerDeadline);
      if (!fallback || !calleeFault || callerGone) throw e;
      if (callerDeadline === undefined) delete ctx.deadline;
      else ctx.deadline = callerDeadline;
      const reason = e.code === 'DEADLINE_EXCEEDED' ? 'timeout' : /circuit breaker open/.test(e.message) ? 'circuit_open' : 'error';
      this.metrics.fallbacks.child(v.name, reason).inc();
      this.logger?.debug({ model: v.name, version: v.version, reason, err: { message: e.message } }, 'answered by the fallback');
      if ('response' in fallback) {
        let outputs = this.defaults.get(v);
        if (!outputs) {
          outputs = staticOutputs(fallback.response.outputs, `model '${v.name}' resilience.fallback`);
          this.defaults.set(v, outputs);
        }
        const wanted = request.outputs && request.outputs.length > 0 ? new Set(request.outputs.map((o) => o.name)) : undefined;
        const response: InferenceResponse = { model_name: v.name, model_version: v.version, outputs: wanted ? outputs.filter((o) => wanted.has(o.name)) : outputs };
        if (request.id !== undefined) response.id = request.id;
        return markFallback(ctx, response, 'static');
      }
      const child = innerContext(ctx, fallback.model, fallback.version);
      const response = await this.plane.infer(child, request);
      return markFallback(ctx, response, `${response.model_name}/${response.model_version}`);
    }
  }
}
