/** The gRPC front door as the server composes it: listen, drain, stop. */
import type { FrontDoor } from '../front-door.js';
import type { ServingPlane } from '../../pipeline/types.js';
import { createGrpcServer, type GrpcServer, type GrpcServerOptions } from './server.js';

export class GrpcDoor implements FrontDoor {
  readonly name = 'grpc';
  port = -1;
  private server: GrpcServer | undefined;

  constructor(private readonly options: GrpcServerOptions) {}

  async start(plane: ServingPlane): Promise<void> {
    this.server = createGrpcServer(plane, this.options);
    this.port = await this.server.start();
  }

  /** Stops accepting calls and lets those in flight finish until the deadline, then cuts them. */
  drain(deadline: number): Promise<void> {
    return this.server?.drain(Math.max(0, deadline - Date.now())) ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.server?.forceStop();
  }
}
