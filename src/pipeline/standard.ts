/** The policies every server runs, built from the server's parts, in chain.ts's order. */
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { ModelManager } from '../models/manager.js';
import type { Metrics } from '../observability/metrics.js';
import { standardChain, type ChainSlots } from './chain.js';
import { AdmissionPolicy } from './policies/admission.js';
import { ObservePolicy } from './policies/observe.js';
import { ResolvePolicy } from './policies/resolve.js';
import { ValidatePolicy } from './policies/validate.js';
import type { Policy, ServingPlane } from './types.js';

export interface StandardPolicyParts {
  manager: ModelManager;
  plane: Pick<ServingPlane, 'isDraining'> & { readonly inFlightCount: number; readonly isStarted?: boolean };
  /** server.max_inflight_requests */
  maxInFlight?: number;
  metrics?: Metrics;
  tracer?: Tracer;
  logger?: Logger;
  accessLog?: boolean;
  /** The optional slots (security, routing, cache, capture), as the configuration turns them on. */
  optional?: Pick<ChainSlots, 'security' | 'routing' | 'cache' | 'capture'>;
}

export function standardPolicies(parts: StandardPolicyParts): Policy[] {
  return standardChain({
    observe: new ObservePolicy({
      ...(parts.metrics?.enabled ? { metrics: parts.metrics } : {}),
      ...(parts.tracer ? { tracer: parts.tracer } : {}),
      ...(parts.logger ? { logger: parts.logger } : {}),
      accessLog: parts.accessLog ?? false,
    }),
    admission: new AdmissionPolicy(parts.plane, parts.maxInFlight),
    resolve: new ResolvePolicy(parts.manager, () => parts.plane.isStarted ?? true),
    validate: new ValidatePolicy(),
    ...parts.optional,
  });
}
