/**
 * The context of an in-process call a policy makes on a caller's behalf (an ensemble step, a
 * fallback model): same correlation id, deadline, cancellation and priority, and the caller's
 * headers, so authentication and authorisation judge the inner call as the caller's own.
 */
import { InferdError } from '../core/errors.js';
import { callContext } from '../pipeline/context.js';
import type { PipelineContext } from '../pipeline/types.js';

/** Inner calls nest (an ensemble step that is an ensemble, a fallback's fallback) up to this depth: deeper is a cycle. */
export const MAX_DEPTH = 8;
const DEPTH = Symbol('inner call depth');
type WithDepth = PipelineContext & { [DEPTH]?: number };

export function innerContext(outer: PipelineContext, model: string, version?: string): PipelineContext {
  const depth = ((outer as WithDepth)[DEPTH] ?? 0) + 1;
  if (depth > MAX_DEPTH) {
    // A configuration fault, not the callee's: no fallback is tried for it.
    throw new InferdError('FAILED_PRECONDITION', `calls between models nest deeper than ${MAX_DEPTH} at '${model}': the ensemble steps or fallbacks form a cycle`);
  }
  const child: WithDepth = callContext(model, version, { requestId: outer.requestId });
  child[DEPTH] = depth;
  if (outer.header) child.header = outer.header;
  if (outer.deadline !== undefined) child.deadline = outer.deadline;
  if (outer.signal) child.signal = outer.signal;
  if (outer.identity) child.identity = outer.identity;
  if (outer.priority !== undefined) child.priority = outer.priority;
  return child;
}
