/** The REST front door as the server composes it: listen, drain, stop. */
import type { FastifyInstance } from 'fastify';
import type { FrontDoor } from '../front-door.js';
import { httpInFlightOf } from './app.js';

export class RestDoor implements FrontDoor {
  readonly name = 'rest';
  port = 0;

  constructor(
    readonly app: FastifyInstance,
    private readonly host: string,
    private readonly requestedPort: number,
  ) {}

  async start(): Promise<void> {
    await this.app.listen({ host: this.host, port: this.requestedPort });
    const address = this.app.server.address();
    this.port = typeof address === 'object' && address ? address.port : this.requestedPort;
  }

  /** Waits, up to the deadline, for answers already computed to reach their sockets. */
  async drain(deadline: number): Promise<void> {
    while (httpInFlightOf(this.app) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  /** Closes the listener; sockets still open are idle keep-alive ones or stuck clients: closed, bounded. */
  async stop(): Promise<void> {
    const closing = this.app.close().catch(() => undefined);
    this.app.server.closeIdleConnections();
    const forced = setTimeout(() => this.app.server.closeAllConnections(), 500);
    await closing;
    clearTimeout(forced);
  }
}
