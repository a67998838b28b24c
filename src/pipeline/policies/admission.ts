/**
 * Admission: whether the server takes a call at all. While draining, only probes are answered;
 * an inference whose deadline has already passed is refused before it costs anything; the
 * request's own `priority` and `timeout` parameters are checked and applied to its context.
 */
import { DeadlineExceededError, OverloadedError, UnavailableError } from '../../core/errors.js';
import type { InferenceRequest, InferenceResponse } from '../../core/types.js';
import { applyRequestParameters } from '../context.js';
import type { ControlCall, NextControl, NextInfer, PipelineContext, Policy } from '../types.js';

/** Calls answered while the server drains: probes, and the reads a load balancer needs. */
const WHILE_DRAINING = new Set(['server.live', 'server.ready', 'server.startup', 'server.metrics']);

export class AdmissionPolicy implements Policy {
  readonly name = 'admission';

  constructor(
    private readonly plane: { readonly isDraining: boolean; readonly inFlightCount: number },
    /** Inferences in the pipeline at once; the one past it is refused at once (503 + Retry-After). */
    private readonly maxInFlight = Infinity,
  ) {}

  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    if (this.plane.isDraining) throw draining();
    // The plane counts this request already: more than the limit means it is one too many.
    if (this.plane.inFlightCount > this.maxInFlight) {
      throw new OverloadedError(`the server has ${this.maxInFlight} requests in progress, its limit (server.max_inflight_requests); retry shortly or on another replica`, 1);
    }
    applyRequestParameters(ctx, request);
    if (ctx.deadline !== undefined && ctx.deadline <= Date.now()) throw new DeadlineExceededError('the request deadline had already passed when it arrived');
    return next(ctx, request);
  }

  control(ctx: PipelineContext, call: ControlCall, next: NextControl): Promise<unknown> {
    if (this.plane.isDraining && !WHILE_DRAINING.has(call.action)) throw draining();
    return next(ctx, call);
  }
}

function draining(): UnavailableError {
  return new UnavailableError('the server is shutting down; retry on another replica', 5);
}
