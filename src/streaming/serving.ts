/**
 * The streaming and batch doors as the server composes them: the Kafka door (a FrontDoor that
 * starts once models are loaded), the server's own batch worker, and job status for the admin API.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/schema.js';
import { InferdError } from '../core/errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { DataPlane } from '../pipeline/dataplane.js';
import type { ServingPlane } from '../pipeline/types.js';
import type { FrontDoor } from '../server/front-door.js';
import { jobStatusSource, startServerBatchWorker } from './batch/attach.js';
import { createKafkaDoor } from './kafka/attach.js';

/** The server's batch worker as a door: it takes chunks of jobs from Redis. */
class BatchWorkerDoor implements FrontDoor {
  readonly name = 'batch';
  readonly startsAfterModels = true;
  private worker: Awaited<ReturnType<typeof startServerBatchWorker>>;

  constructor(
    private readonly config: Pick<ServerConfig, 'batch'>,
    private readonly logger: Logger,
  ) {}

  async start(plane: ServingPlane): Promise<void> {
    this.worker = startServerBatchWorker(this.config, plane as DataPlane, this.logger);
  }

  async drain(): Promise<void> {
    // The worker finishes the chunk it holds when closed; unfinished chunks are retried elsewhere.
  }

  async stop(): Promise<void> {
    await this.worker?.close();
  }
}

export interface StreamingServing {
  doors: FrontDoor[];
  routes(app: FastifyInstance, plane: ServingPlane): void;
  close(): Promise<void>;
}

export function createStreamingServing(deps: { config: ServerConfig; metrics: Metrics; logger: Logger }): StreamingServing {
  const doors: FrontDoor[] = [];
  const kafka = createKafkaDoor(deps);
  if (kafka) doors.push(Object.assign(kafka, { startsAfterModels: true }) as FrontDoor);
  if (deps.config.batch.workers > 0) doors.push(new BatchWorkerDoor(deps.config, deps.logger));
  const jobs = jobStatusSource(deps.config);
  return {
    doors,
    routes(app, plane) {
      app.get<{ Params: { id: string } }>('/v2/admin/jobs/:id', async (req) =>
        plane.control(req.ctx, { action: 'jobs.read', write: false }, async () => {
          if (!jobs) throw new InferdError('NOT_FOUND', 'no batch jobs here: this server has no batch.redis configured');
          const status = await jobs.status(req.params.id);
          if (status === undefined) throw new InferdError('NOT_FOUND', `job '${req.params.id}' is not found`);
          return status;
        }),
      );
    },
    close: async () => {
      await jobs?.close();
    },
  };
}
