/**
 * The one place traffic management calls the data plane: running a request on the version
 * `ctx.version` names (shadow copies). It runs only the served end of the chain: the caller's
 * own request has already been admitted, authenticated, limited and routed.
 */
import { InvalidInputError } from '../core/errors.js';
import type { InferenceRequest, InferenceResponse } from '../core/types.js';
import type { PipelineContext } from '../pipeline/types.js';
import type { ModelManager } from '../models/manager.js';
import { mirrorChannelName, type MirrorTarget } from '../workers/mirror.js';
import type { RunOnVersion } from './shadow.js';

export interface InferencePlane {
  inferServed(ctx: PipelineContext, request: InferenceRequest): Promise<InferenceResponse>;
}

export function runOnPlane(plane: InferencePlane): RunOnVersion {
  return (ctx, request) => {
    if (ctx.model === undefined) return Promise.reject(new InvalidInputError('no model named for the request'));
    // A fresh context: the shadow's resolution and timings must not touch the caller's.
    const shadow: PipelineContext = { ...ctx, responseHeaders: {} };
    delete shadow.served;
    delete shadow.outcome;
    delete shadow.observed;
    return plane.inferServed(shadow, request);
  };
}

/**
 * Where a version's worker threads take mirrored requests: a ready version of a model that runs
 * in worker threads (onnx, js); undefined otherwise (not loaded, remote, ensemble).
 */
export function mirrorTargetOf(manager: Pick<ModelManager, 'serving'>, model: string, version: string): MirrorTarget | undefined {
  const v = manager.serving.versionsOf(model).find((x) => x.version === version);
  if (v === undefined || v.state !== 'READY' || (v.config.runtime !== 'onnx' && v.config.runtime !== 'js')) return undefined;
  return { channel: mirrorChannelName(v.name, v.version, v.path), executionTimeoutMs: v.config.execution.timeout_ms, stopWorker: (threadId) => v.stopWorker(threadId) };
}
