/**
 * The one place traffic management calls the data plane: running a request on the version
 * `ctx.version` names (shadow copies, and the end of the chain in tests). When the data plane
 * takes `infer(ctx, request)`, this is the only line to change.
 */
import { InvalidInputError } from '../core/errors.js';
import type { InferenceRequest, InferenceResponse, RequestContext } from '../core/types.js';
import type { RunOnVersion } from './shadow.js';

export interface InferencePlane {
  infer(name: string, version: string | undefined, request: InferenceRequest, context: RequestContext): Promise<InferenceResponse>;
}

export function runOnPlane(plane: InferencePlane): RunOnVersion {
  return (ctx, request) => {
    if (ctx.model === undefined) return Promise.reject(new InvalidInputError('no model named for the request'));
    return plane.infer(ctx.model, ctx.version, request, ctx);
  };
}
