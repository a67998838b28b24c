/**
 * Validation against the served version: the request's inputs and requested outputs must fit
 * the model's signature (names, datatypes, shapes), and, where the model has `input_ranges`,
 * its features must lie within the training profile (refused, or counted, per the config).
 */
import type { InferenceRequest, InferenceResponse } from '../../core/types.js';
import { RangeGuard } from '../../models/input-ranges.js';
import { checkRequest } from '../../models/signature.js';
import type { NextInfer, PipelineContext, Policy } from '../types.js';

export class ValidatePolicy implements Policy {
  readonly name = 'validate';

  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const v = ctx.served!;
    try {
      checkRequest(v.name, v.inputs, v.outputs, request);
      const guard = v.ranges;
      if (guard) {
        const violations = guard.violations(request.inputs);
        if (violations.length > 0) {
          if (guard.mode === 'reject') throw guard.rejection(violations);
          for (const [feature, count] of RangeGuard.countByFeature(violations)) v.recordOutOfRange(feature, count);
        }
      }
    } catch (error) {
      v.stats.recordFailure(0);
      throw error;
    }
    return next(ctx, request);
  }
}
