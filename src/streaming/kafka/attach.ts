/**
 * How a server runs the Kafka door: built from the `kafka:` block of its configuration, metrics
 * in the server's registry, started on the server's data plane. Shutdown order: drain the door
 * (it stops consuming and lets the batch in flight commit) before the data plane drains, stop it
 * after.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../../config/schema.js';
import type { DataPlane } from '../../pipeline/dataplane.js';
import type { Metrics } from '../../observability/metrics.js';
import { kafkaDoorConfigOf } from './config.js';
import { KafkaDoor } from './door.js';

export interface KafkaDoorHost {
  config: Pick<ServerConfig, 'kafka'>;
  plane: DataPlane;
  metrics: Metrics;
  logger: Logger;
}

/** Builds the door when `kafka.enabled` is set, else returns undefined. Call start(plane) on it. */
export function createKafkaDoor(host: Pick<KafkaDoorHost, 'config' | 'metrics' | 'logger'>): KafkaDoor | undefined {
  const config = kafkaDoorConfigOf(host.config);
  if (!config) return undefined;
  return new KafkaDoor({ config, logger: host.logger, ...(host.metrics.enabled ? { registry: host.metrics.registry } : {}) });
}

/** Builds and starts the door on the host's data plane; undefined when the door is off. */
export async function startKafkaDoor(host: KafkaDoorHost): Promise<KafkaDoor | undefined> {
  const door = createKafkaDoor(host);
  await door?.start(host.plane);
  return door;
}
