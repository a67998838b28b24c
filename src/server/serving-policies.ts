/**
 * The serving policies of the pipeline's `cache` slot, in order: the prediction cache (a hit
 * costs nothing else), resilience (bulkhead, retry, circuit breaker, timeout, fallback) around
 * the rest, and ensembles (steps through the data plane). Plus the admin routes of the cache.
 * The server composes these with one call: `servingPolicies(...)`.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { CachePolicy } from '../cache/policy.js';
import { PredictionCache } from '../cache/prediction-cache.js';
import type { ServerConfig } from '../config/schema.js';
import { EnsemblePolicy } from '../ensembles/policy.js';
import type { Metrics } from '../observability/metrics.js';
import type { Policy, ServingPlane } from '../pipeline/types.js';
import { resilienceMetrics } from '../resilience/metrics.js';
import { ResiliencePolicy } from '../resilience/policy.js';
import { cacheRoutes } from './admin/cache.js';

export interface ServingPolicies {
  cache: PredictionCache;
  /** The policies of the `cache` slot, for the plane being built. */
  policies(plane: Pick<ServingPlane, 'infer'>): Policy[];
  /** The admin routes of the cache (`/v2/admin/cache`). */
  adminRoutes: (app: FastifyInstance, plane: ServingPlane) => void;
  close(): Promise<void>;
}

export function servingPolicies(parts: { config: Pick<ServerConfig, 'cache'>; metrics?: Metrics; logger?: Logger }): ServingPolicies {
  const registry = parts.metrics?.enabled ? parts.metrics.registry : undefined;
  const c = parts.config.cache;
  const cache = new PredictionCache({
    memoryBytes: c.memory_bytes,
    redisTimeoutMs: c.redis_timeout_ms,
    sharedLockMs: c.shared_lock_ms,
    ...(c.redis_url !== undefined ? { redisUrl: c.redis_url } : {}),
    ...(parts.logger ? { logger: parts.logger } : {}),
    ...(registry ? { registry } : {}),
  });
  const resilience = resilienceMetrics(registry);
  return {
    cache,
    policies: (plane) => [new CachePolicy(cache), new ResiliencePolicy(plane, resilience, parts.logger), new EnsemblePolicy(plane)],
    adminRoutes: (app, plane) => cacheRoutes(cache, plane)(app),
    close: () => cache.close(),
  };
}
