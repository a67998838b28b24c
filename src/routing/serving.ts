/**
 * Traffic management as the server composes it: the service (policies, canary controllers,
 * shadows, feedback), its routing and guard policies, its admin routes through the pipeline,
 * and its metrics. State is kept in the registry database when one is configured, so every
 * replica and a restart see the same policies; in memory otherwise.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { ServerConfig } from '../config/schema.js';
import type { ModelManager } from '../models/manager.js';
import type { RegistryLink } from '../models/registry-link.js';
import type { ControlCall, Policy, ServingPlane } from '../pipeline/types.js';
import { getAnalysis, getExperiment, getTraffic, listTraffic, postFeedback, putTraffic, type AdminResult, type TrafficAdminDeps } from './admin.js';
import { configuredTrafficPolicies } from './configured.js';
import { exactStatistics } from './exact-statistics.js';
import { trafficGuardPolicy } from './guard.js';
import { registerTrafficMetrics } from './metrics.js';
import { mirrorTargetOf, runOnPlane, type InferencePlane } from './plane.js';
import { routingPolicy } from './policy.js';
import { TrafficService } from './service.js';
import { TrafficStore } from './store.js';

export interface TrafficServing {
  service: TrafficService;
  /** Routing, in the chain's routing slot. */
  policy: Policy;
  /** Refuses unloading versions a policy needs (control calls; after security). */
  guard: Policy;
  routes(app: FastifyInstance, plane: ServingPlane): void;
  close(): Promise<void>;
}

export async function createTrafficServing(deps: {
  config: ServerConfig;
  manager: ModelManager;
  plane: () => InferencePlane;
  registry?: RegistryLink;
  metrics?: MetricsRegistry;
  logger: Logger;
}): Promise<TrafficServing> {
  let store: TrafficStore | undefined;
  if (deps.registry) {
    try {
      store = TrafficStore.fromRegistry(await deps.registry.get());
    } catch (error) {
      deps.logger.warn({ err: (error as Error).message }, 'traffic policies are kept in memory only: the registry database cannot be opened');
    }
  }
  const service = await TrafficService.open(configuredTrafficPolicies(deps.config.models), {
    ...(store ? { store } : {}),
    runOnVersion: (ctx, request) => runOnPlane(deps.plane())(ctx, request),
    mirrorTarget: (model, version) => mirrorTargetOf(deps.manager, model, version),
    versionNice: (model, version, nice) => deps.manager.setNice(model, version, nice),
    logger: deps.logger,
    refreshIntervalMs: deps.config.traffic.refresh_interval_ms,
    leaseTtlMs: deps.config.traffic.lease_ttl_ms,
  });
  if (deps.metrics) registerTrafficMetrics(deps.metrics, service);
  const admin: TrafficAdminDeps = {
    traffic: service,
    served: { versions: (model: string) => deps.manager.serving.versionsOf(model).map((v) => v.version) },
    statistics: exactStatistics,
  };
  return {
    service,
    policy: routingPolicy(service),
    guard: trafficGuardPolicy(service),
    routes(app, plane) {
      const run = async (req: FastifyRequest, reply: import('fastify').FastifyReply, call: ControlCall, handler: () => Promise<AdminResult>) => {
        const result = await plane.control(req.ctx, call, handler);
        return reply.code(result.status).send(result.body);
      };
      type Model = { Params: { model: string } };
      app.get('/v2/admin/traffic', (req, reply) => run(req, reply, { action: 'traffic.read', write: false }, () => listTraffic(admin)));
      app.get<Model>('/v2/admin/models/:model/traffic', (req, reply) =>
        run(req, reply, { action: 'traffic.read', write: false, model: req.params.model }, () => getTraffic(admin, req.params.model)),
      );
      app.put<Model>('/v2/admin/models/:model/traffic', (req, reply) =>
        run(req, reply, { action: 'traffic.set', write: true, model: req.params.model }, () =>
          putTraffic(admin, req.params.model, req.body, req.ctx.identity?.subject ?? 'admin'),
        ),
      );
      app.get<Model & { Querystring: { window?: string; version?: string } }>('/v2/admin/models/:model/analysis', (req, reply) =>
        run(req, reply, { action: 'traffic.read', write: false, model: req.params.model }, () => getAnalysis(admin, req.params.model, req.query)),
      );
      app.get<{ Params: { name: string } }>('/v2/admin/experiments/:name', (req, reply) =>
        run(req, reply, { action: 'experiment.read', write: false, model: req.params.name }, () => getExperiment(admin, req.params.name)),
      );
      app.post<Model>('/v2/models/:model/feedback', (req, reply) =>
        run(req, reply, { action: 'feedback.post', write: true, model: req.params.model }, () => postFeedback(admin, req.params.model, req.body)),
      );
    },
    close: () => service.close(),
  };
}
