/**
 * The context of an in-process call a policy makes on a caller's behalf (an ensemble step, a
 * fallback model): same correlation id, deadline, cancellation and priority, and the caller's
 * headers, so authentication and authorisation judge the inner call as the caller's own.
 */
import { callContext } from '../pipeline/context.js';
import type { PipelineContext } from '../pipeline/types.js';

export function innerContext(outer: PipelineContext, model: string, version?: string): PipelineContext {
  const child = callContext(model, version, { requestId: outer.requestId });
  if (outer.header) child.header = outer.header;
  if (outer.deadline !== undefined) child.deadline = outer.deadline;
  if (outer.signal) child.signal = outer.signal;
  if (outer.identity) child.identity = outer.identity;
  if (outer.priority !== undefined) child.priority = outer.priority;
  return child;
}
