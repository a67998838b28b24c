/**
 * The order of the request pipeline, read top to bottom like the life of a request:
 *
 *   observe      metrics, access log, tracing: wraps everything below, once
 *   admission    draining, deadline already passed, request parameters
 *   security     authentication, authorisation, rate limits, audit
 *   routing      traffic policies (split, canary, blue-green, shadow) pick a version
 *   resolve      the version that answers; a lazy model loads here
 *   cache        answers a repeated request without running the model
 *   validate     signature and input ranges of the served version
 *   capture      samples inputs and outputs for drift windows, off the hot path
 *   ─ then the version's scheduler (dynamic batching) and its worker threads.
 *
 * A new policy is one file implementing `Policy` (types.ts) and one entry in its slot here.
 */
import type { InferenceRequest } from '../core/types.js';
import type { ControlCall, NextControl, NextInfer, PipelineContext, Policy } from './types.js';

export interface ChainSlots {
  observe: Policy;
  admission: Policy;
  security?: Policy[];
  routing?: Policy[];
  resolve: Policy;
  cache?: Policy[];
  validate: Policy;
  capture?: Policy[];
}

export function standardChain(slots: ChainSlots): Policy[] {
  return [
    slots.observe,
    slots.admission,
    ...(slots.security ?? []),
    ...(slots.routing ?? []),
    slots.resolve,
    ...(slots.cache ?? []),
    slots.validate,
    ...(slots.capture ?? []),
  ];
}

/** Composes the inference hooks of `policies` around `terminal`; a policy without one is skipped. */
export function composeInfer(policies: readonly Policy[], terminal: NextInfer): NextInfer {
  let next = terminal;
  for (let i = policies.length - 1; i >= 0; i--) {
    const policy = policies[i]!;
    if (!policy.infer) continue;
    const after = next;
    next = (ctx: PipelineContext, request: InferenceRequest) => {
      try {
        return policy.infer!(ctx, request, after);
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }
  return next;
}

/** Composes the control hooks of `policies` around `terminal`; a policy without one is skipped. */
export function composeControl(policies: readonly Policy[], terminal: NextControl): NextControl {
  let next = terminal;
  for (let i = policies.length - 1; i >= 0; i--) {
    const policy = policies[i]!;
    if (!policy.control) continue;
    const after = next;
    next = (ctx: PipelineContext, call: ControlCall) => {
      try {
        return policy.control!(ctx, call, after);
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }
  return next;
}
