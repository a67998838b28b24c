/** The one call from the streaming and batch doors into the data plane. */
import type { InferenceRequest, InferenceResponse } from '../core/types.js';
import { createContext, recordReader } from '../pipeline/context.js';
import type { PipelineContext, ServingPlane } from '../pipeline/types.js';

/** The part of the data plane the streaming doors use. */
export type InferencePlane = Pick<ServingPlane, 'infer' | 'modelMetadata'>;

/**
 * Runs a request through the whole pipeline (security, routing, cache, capture, metrics).
 * `ctx` may be a plain description from a door; it is completed into a pipeline context.
 */
export function inferOnPlane(plane: InferencePlane, ctx: Partial<PipelineContext> & { model: string; requestId: string; protocol: PipelineContext['protocol'] }, request: InferenceRequest): Promise<InferenceResponse> {
  ctx.responseHeaders ??= {};
  return plane.infer(ctx as PipelineContext, request);
}

/** A context for a batch or streaming caller that has no headers of its own. */
export function streamContext(door: 'kafka' | 'batch', model: string, version: string | undefined, requestId: string, headers: Record<string, string> = {}): PipelineContext {
  return createContext({ door, header: recordReader({ ...headers, 'x-correlation-id': requestId }), model, ...(version !== undefined ? { version } : {}) });
}
