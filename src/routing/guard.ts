/**
 * A control-side policy: a version a traffic policy routes or mirrors to (or keeps warm after a
 * blue-green switch) is not unloaded from under it. The operator changes the policy first.
 */
import { InferdError } from '../core/errors.js';
import type { ControlCall, NextControl, Policy } from '../pipeline/types.js';
import type { RequestContext } from '../core/types.js';
import type { TrafficService } from './service.js';

export function trafficGuardPolicy(traffic: TrafficService): Policy {
  return {
    name: 'traffic-guard',
    async control(ctx: RequestContext, call: ControlCall, next: NextControl): Promise<unknown> {
      if (call.action === 'model.unload' && call.model !== undefined) {
        const needed = traffic.requiredVersions(call.model);
        const hit = call.version === undefined ? needed : needed.filter((v) => v === call.version);
        if (hit.length > 0) {
          throw new InferdError(
            'FAILED_PRECONDITION',
            `model '${call.model}' version ${hit.join(', ')} is in use by its traffic policy; change it first (inferd traffic show ${call.model})`,
          );
        }
      }
      return next(ctx, call);
    },
  };
}
