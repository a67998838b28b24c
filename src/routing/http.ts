/**
 * The traffic admin routes and the feedback route on a Fastify instance, for a server that
 * mounts the handlers of admin.ts as they are. Authentication and authorisation belong to the
 * server's own hooks, which run before these.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { getAnalysis, getExperiment, getTraffic, listTraffic, postFeedback, putTraffic, type AdminResult, type TrafficAdminDeps } from './admin.js';

type ModelParams = { Params: { model: string } };

function send(reply: FastifyReply, result: AdminResult): FastifyReply {
  return reply.code(result.status).send(result.body);
}

export function mountTrafficRoutes(app: FastifyInstance, deps: TrafficAdminDeps, actorOf: (headers: Record<string, unknown>) => string = () => 'admin'): void {
  app.get('/v2/admin/traffic', async (_req, reply) => send(reply, await listTraffic(deps)));
  app.get<ModelParams>('/v2/admin/models/:model/traffic', async (req, reply) => send(reply, await getTraffic(deps, req.params.model)));
  app.put<ModelParams>('/v2/admin/models/:model/traffic', async (req, reply) => send(reply, await putTraffic(deps, req.params.model, req.body, actorOf(req.headers))));
  app.get<ModelParams & { Querystring: { window?: string; version?: string } }>('/v2/admin/models/:model/analysis', async (req, reply) =>
    send(reply, await getAnalysis(deps, req.params.model, req.query)),
  );
  app.get<{ Params: { name: string } }>('/v2/admin/experiments/:name', async (req, reply) => send(reply, await getExperiment(deps, req.params.name)));
  app.post<ModelParams>('/v2/models/:model/feedback', async (req, reply) => send(reply, await postFeedback(deps, req.params.model, req.body)));
}
