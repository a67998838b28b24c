/**
 * Batch jobs inside a server: `batch.workers > 0` makes the server a batch worker scoring chunks
 * through its own data plane (same models, batching and metrics as its other doors), and
 * `batch.redis` lets it answer job status (GET /v2/admin/jobs/{id}).
 */
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { ServerConfig } from '../../config/schema.js';
import type { DataPlane } from '../../pipeline/dataplane.js';
import { BATCH_QUEUE, startBatchWorker, statusOf, type BatchJobStatus, type BatchWorker } from './jobs.js';
import { planeScorer } from './scorer.js';

/** Starts the server's batch worker when `batch.workers > 0` (requires `batch.redis`). */
export function startServerBatchWorker(config: Pick<ServerConfig, 'batch'>, plane: DataPlane, logger?: Logger): BatchWorker | undefined {
  const { redis, workers } = config.batch;
  if (workers === 0) return undefined;
  if (!redis) throw new Error('batch.workers is set but batch.redis is not: the worker needs the Redis that holds the jobs');
  return startBatchWorker(redis, {
    scorerFor: async (model, version) => planeScorer(plane, model, version),
    concurrency: workers,
    ...(logger ? { logger } : {}),
  });
}

export interface JobStatusSource {
  /** The job's status JSON, or undefined when there is no such job (answer 404). */
  status(jobId: string): Promise<BatchJobStatus | undefined>;
  close(): Promise<void>;
}

/** Job status for an admin route; one Redis connection kept for the server's life. Undefined without `batch.redis`. */
export function jobStatusSource(config: Pick<ServerConfig, 'batch'>): JobStatusSource | undefined {
  const redis = config.batch.redis;
  if (!redis) return undefined;
  const queue = new Queue(BATCH_QUEUE, { connection: { url: redis, maxRetriesPerRequest: null } });
  return {
    status: (jobId) => statusOf(queue, jobId),
    close: () => queue.close(),
  };
}
