/**
 * A front door: one way requests reach the data plane (REST, gRPC, Kafka, batch workers).
 * The server starts every configured door, and on shutdown drains them all before stopping
 * them; the order is written once, in src/server/index.ts.
 */
import type { ServingPlane } from '../pipeline/types.js';

export interface FrontDoor {
  /** Short name for logs: 'rest', 'grpc', 'kafka'... */
  readonly name: string;
  /**
   * Starts once the models are loaded (doors that pull work, such as Kafka consumers and batch
   * workers); doors that answer probes (REST, gRPC) start first.
   */
  readonly startsAfterModels?: boolean;
  /** Begins accepting requests; resolves once listening (or consuming). */
  start(plane: ServingPlane): Promise<void>;
  /**
   * Stops taking new work and waits for accepted work to be answered, until `deadline`
   * (Date.now() milliseconds). Resolves by the deadline whatever happens.
   */
  drain(deadline: number): Promise<void>;
  /** Releases sockets and connections; after drain, or at once on a forced stop. */
  stop(): Promise<void>;
}
