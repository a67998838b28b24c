/**
 * Admin routes of the prediction cache, through the pipeline like every admin call:
 *
 *   GET  /v2/admin/cache                  entries and bytes held in memory
 *   POST /v2/admin/cache/clear            {model?}: drops cached answers (memory and Redis)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { validate } from '../../config/validate.js';
import type { PredictionCache } from '../../cache/prediction-cache.js';
import type { ServingPlane } from '../../pipeline/types.js';

const ClearBody = Type.Object({ model: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false });

export function cacheRoutes(cache: PredictionCache, plane: ServingPlane): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/v2/admin/cache', async (req: FastifyRequest) =>
      plane.control(req.ctx, { action: 'cache.status', write: false }, () => ({ entries: cache.memoryEntries, bytes: cache.memoryBytes })),
    );
    app.post('/v2/admin/cache/clear', async (req: FastifyRequest) => {
      const body = validate<{ model?: string }>(ClearBody, req.body ?? {}, 'request body');
      return plane.control(req.ctx, { action: 'cache.clear', write: true, ...(body.model !== undefined ? { model: body.model } : {}) }, async () => {
        const cleared = await cache.clear(body.model);
        return { cleared };
      });
    });
  };
}
