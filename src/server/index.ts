/**
 * Composes the server: model repository and manager, the data plane, and the front doors
 * (REST always, gRPC unless turned off). Owns start-up order and graceful shutdown.
 *
 * Start-up: the HTTP port opens first, so liveness and startup probes answer while models load;
 * readiness turns green when every eager model is loaded and warmed (lazy ones load on their
 * first request). Models come from the repository directory and, for the `models:` entries that
 * name a registry reference, from the model registry; `model_control` decides what loads when
 * (src/models/control.ts). A registry that is down never stops the server: what is loaded serves.
 * Shutdown: readiness fails at once, new requests get 503 with `Connection: close`, accepted
 * ones (queued included) finish, then the doors, workers and sessions close. A deadline bounds
 * the drain; past it the remaining requests get 503 and the shutdown reports it was not clean.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/schema.js';
import { DataPlane } from '../core/dataplane.js';
import { ModelControl } from '../models/control.js';
import { ModelManager } from '../models/manager.js';
import { RegistryLink } from '../models/registry-link.js';
import { ModelRepository } from '../models/repository.js';
import { parseServedModels } from '../models/served.js';
import { adminRoutes } from './admin/routes.js';
import { createGrpcServer, type GrpcServer } from './grpc/server.js';
import { createRestApp, httpInFlightOf } from './rest/app.js';
import { binaryCodec } from './rest/binary-codec.js';
import { createServerLogger } from './logger.js';
import { Metrics } from '../observability/metrics.js';
import { inferenceObserver, requestObserver } from '../observability/server-metrics.js';
import { extractContext, setupTracing, type Tracing } from '../observability/tracing.js';

export interface ShutdownResult {
  clean: boolean;
  /** Requests that were still running or queued when the deadline passed. */
  abandoned: number;
}

export class InferdServer {
  private grpc: GrpcServer | undefined;
  /** Model control (initial loads, polling of the repository and the registry). */
  control: ModelControl | undefined;
  /** The model registry, when one is configured or a model is served from it. */
  registry: RegistryLink | undefined;
  private shuttingDown: Promise<ShutdownResult> | undefined;
  tracing: Tracing | undefined;
  httpPort = 0;
  grpcPort = -1;

  private constructor(
    readonly config: ServerConfig,
    readonly logger: Logger,
    readonly manager: ModelManager,
    readonly plane: DataPlane,
    private readonly http: FastifyInstance,
    readonly metrics: Metrics,
  ) {}

  static async start(config: ServerConfig, logger: Logger = createServerLogger(config)): Promise<InferdServer> {
    const repository = new ModelRepository(config.model_repository);
    const served = parseServedModels(config.models);
    const registryUrl = config.registry ?? (process.env['INFERD_REGISTRY'] || undefined);
    // Opened on first use; a server that names no registry and serves none from it opens none.
    const registry: RegistryLink | undefined =
      registryUrl !== undefined || served.hasRegistryModels
        ? new RegistryLink(registryUrl, {
            ...(config.registry_options.home !== undefined ? { home: config.registry_options.home } : {}),
            busyTimeoutMs: config.registry_options.busy_timeout_ms,
            connectTimeoutMs: config.registry_options.connect_timeout_ms,
            // A version that serves cannot be deleted from the registry.
            isServing: (name: string, version: number): boolean => manager.isServingRegistryVersion(name, version),
            logger,
          })
        : undefined;
    const metrics = new Metrics(config.metrics);
    const tracing: Tracing | undefined = config.tracing.otlp_endpoint
      ? setupTracing({ serviceName: config.tracing.service_name, otlpEndpoint: config.tracing.otlp_endpoint })
      : undefined;
    const traceContext = tracing ? (headers: Record<string, string | string[] | undefined>) => extractContext(headers) : undefined;
    const manager: ModelManager = new ModelManager(repository, {
      logger,
      drainDeadlineMs: config.shutdown.deadline_ms,
      observer: inferenceObserver(metrics),
      served,
      ...(registry ? { registry } : {}),
    });
    const c = config.model_control;
    const control = new ModelControl(manager, {
      mode: c.mode,
      startupModels: c.startup_models,
      pollIntervalMs: c.poll_interval_ms,
      ...(registry ? { registry } : {}),
      logger,
    });
    const plane = new DataPlane(manager, { observer: requestObserver(metrics), ...(tracing ? { tracer: tracing.tracer } : {}) });
    const http = await createRestApp(plane, {
      bodyLimitBytes: config.server.body_limit_bytes,
      keepAliveTimeoutMs: config.server.keep_alive_timeout_ms,
      requestTimeoutMs: config.server.request_timeout_ms,
      logger,
      accessLog: config.logging.access_log,
      binary: binaryCodec,
      traceContext,
      onResponse: metrics.enabled ? ({ route, status, durationSeconds }) => metrics.observeRequest('rest', route, status, durationSeconds) : undefined,
      plugins: [
        (app) => {
          app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()));
        },
        adminRoutes({ manager, control, logger, ...(registry ? { registry } : {}) }),
      ],
    });
    const server = new InferdServer(config, logger, manager, plane, http, metrics);
    server.tracing = tracing;
    server.control = control;
    server.registry = registry;
    try {
      await http.listen({ host: config.server.host, port: config.server.http_port });
      const address = http.server.address();
      server.httpPort = typeof address === 'object' && address ? address.port : config.server.http_port;
      if (config.server.grpc_port >= 0) {
        server.grpc = createGrpcServer(plane, {
          host: config.server.host,
          port: config.server.grpc_port,
          maxMessageBytes: config.server.grpc_max_message_bytes,
          logger,
          traceContext,
        });
        server.grpcPort = await server.grpc.start();
      }
    } catch (error) {
      await http.close().catch(() => undefined);
      server.grpc?.forceStop();
      await registry?.close();
      throw error;
    }
    logger.info(
      { httpPort: server.httpPort, grpcPort: server.grpcPort, repository: repository.root, ...(registry ? { registry: registry.label } : {}), modelControl: c.mode },
      'inferd listening',
    );

    await control.start();
    plane.markStarted();
    logger.info({ ready: plane.ready(), failures: manager.failures() }, plane.ready() ? 'inferd ready' : 'inferd started, not ready');
    return server;
  }

  get httpApp(): FastifyInstance {
    return this.http;
  }

  /** Drains and closes everything; safe to call more than once (later calls share the first). */
  shutdown(deadlineMs = this.config.shutdown.deadline_ms): Promise<ShutdownResult> {
    this.shuttingDown ??= this.drainAndClose(deadlineMs);
    return this.shuttingDown;
  }

  private async drainAndClose(deadlineMs: number): Promise<ShutdownResult> {
    const log = this.logger;
    const controlStopped = this.control?.stop();
    this.plane.startDraining();
    log.info({ inFlight: this.plane.inFlightCount, deadlineMs }, 'draining');
    const deadline = Date.now() + deadlineMs;
    const grpcDrained = this.grpc?.drain(deadlineMs) ?? Promise.resolve();

    const idle = async () => {
      await this.plane.whenIdle();
      // Let responses that are computed but still being written reach their sockets.
      while (httpInFlightOf(this.http) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      idle().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    let abandoned = 0;
    if (timedOut) {
      abandoned = this.plane.inFlightCount;
      log.warn({ abandoned }, 'drain deadline passed; answering the remaining requests with 503');
      // Queued requests are rejected now (their callers get 503); running batches get a short grace.
      for (const v of this.manager.loaded()) void v.unload(0);
      await Promise.race([this.plane.whenIdle(), new Promise((r) => setTimeout(r, 1000))]);
      this.grpc?.forceStop();
    }
    await grpcDrained.catch(() => undefined);
    // Sockets still open here are idle keep-alive ones or stuck clients: close them, bounded.
    const closing = this.http.close().catch(() => undefined);
    const forced = setTimeout(() => this.http.server.closeAllConnections(), 2000);
    await closing;
    clearTimeout(forced);
    await controlStopped;
    await this.manager.close();
    await this.registry?.close();
    await this.tracing?.shutdown().catch(() => undefined);
    log.info({ clean: !timedOut, abandoned }, 'shutdown complete');
    return { clean: !timedOut, abandoned };
  }
}

