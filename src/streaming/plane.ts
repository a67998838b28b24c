/**
 * The one call from the streaming and batch doors into the data plane. The data plane's entry
 * point is moving to `plane.infer(ctx, request)` with the target in `ctx.model`/`ctx.version`;
 * keeping the call here makes that a one-line change.
 */
import type { InferenceRequest, InferenceResponse, InferenceService, RequestContext } from '../core/types.js';

/** The part of the data plane the streaming doors use. */
export type InferencePlane = Pick<InferenceService, 'infer' | 'modelMetadata'>;

export function inferOnPlane(plane: InferencePlane, ctx: RequestContext & { model: string }, request: InferenceRequest): Promise<InferenceResponse> {
  return plane.infer(ctx.model, ctx.version, request, ctx);
}
