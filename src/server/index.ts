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
import { projectVariable } from '../config/environment.js';
import { ModelControl } from '../models/control.js';
import { ModelManager } from '../models/manager.js';
import { RegistryLink } from '../models/registry-link.js';
import { ModelRepository } from '../models/repository.js';
import { parseServedModels } from '../models/served.js';
import { createDriftServing, type DriftServing } from '../monitoring/serving.js';
import { Metrics } from '../observability/metrics.js';
import { inferenceObserver } from '../observability/server-metrics.js';
import { extractContextFrom, setupTracing, type Tracing } from '../observability/tracing.js';
import { DataPlane } from '../pipeline/dataplane.js';
import { standardPolicies } from '../pipeline/standard.js';
import type { Policy } from '../pipeline/types.js';
import { peerFromGrpcAuthContext, peerFromTlsSocket, setPeerCertificate } from '../security/authn/mtls.js';
import { createSecurityLayer, startupWarnings, type SecurityLayer } from '../security/index.js';
import { createTrafficServing, type TrafficServing } from '../routing/serving.js';
import { createStreamingServing, type StreamingServing } from '../streaming/serving.js';
import { adminRoutes } from './admin/routes.js';
import { servingPolicies, type ServingPolicies } from './serving-policies.js';
import type { FrontDoor } from './front-door.js';
import { GrpcDoor } from './grpc/door.js';
import { createServerLogger } from '../observability/logger.js';
import { createRestApp } from './rest/app.js';
import { RestDoor } from './rest/door.js';

/** Ways to adjust a server at start, for embedding and tests. */
export interface ServerHooks {
  /** Receives the standard request pipeline and returns the one to use (insert, replace, reorder). */
  policies?: (chain: Policy[]) => Policy[];
}

export interface ShutdownResult {
  clean: boolean;
  /** Requests that were still running or queued when the deadline passed. */
  abandoned: number;
}

export class InferdServer {
  /** Model control (initial loads, polling of the repository and the registry). */
  control: ModelControl | undefined;
  /** The model registry, when one is configured or a model is served from it. */
  registry: RegistryLink | undefined;
  /** Drift monitoring of served traffic (models with a `drift:` section). */
  drift: DriftServing | undefined;
  /** Prediction cache, resilience and ensembles. */
  servingPolicies: ServingPolicies | undefined;
  private shuttingDown: Promise<ShutdownResult> | undefined;
  tracing: Tracing | undefined;
  /** Authentication, authorisation, rate limits, TLS and audit (off unless configured). */
  security: SecurityLayer | undefined;
  /** Traffic management: split, canary, blue-green, shadow, experiments and feedback. */
  traffic: TrafficServing | undefined;
  streaming: StreamingServing | undefined;
  httpPort = 0;
  grpcPort = -1;

  private constructor(
    readonly config: ServerConfig,
    readonly logger: Logger,
    readonly manager: ModelManager,
    readonly plane: DataPlane,
    private readonly http: FastifyInstance,
    readonly metrics: Metrics,
    /** Every front door, in start order; shutdown drains them together, then stops them. */
    readonly doors: FrontDoor[],
  ) {}

  static async start(config: ServerConfig, logger: Logger = createServerLogger(config), hooks: ServerHooks = {}): Promise<InferdServer> {
    const repository = new ModelRepository(config.model_repository);
    const served = parseServedModels(config.models);
    const registryUrl = config.registry ?? projectVariable('INFERD_REGISTRY');
    const metrics = new Metrics(config.metrics);
    for (const warning of startupWarnings(config.security, config.server.host)) logger.warn({ host: config.server.host }, warning);
    const security = await createSecurityLayer(config.security, {
      ...(registryUrl !== undefined ? { registryUrl } : {}),
      logger,
      ...(metrics.enabled ? { metrics: metrics.registry } : {}),
    });
    // A rate limiter that has not reached Redis yet would degrade the first requests.
    await security.limiter?.ready();
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
            ...(security.artifactCipher ? { artifactCipher: security.artifactCipher } : {}),
          })
        : undefined;
    const tracing: Tracing | undefined = config.tracing.otlp_endpoint
      ? setupTracing({ serviceName: config.tracing.service_name, otlpEndpoint: config.tracing.otlp_endpoint })
      : undefined;
    const traceContext = tracing ? extractContextFrom : undefined;
    const manager: ModelManager = new ModelManager(repository, {
      logger,
      drainDeadlineMs: config.shutdown.deadline_ms,
      observer: inferenceObserver(metrics),
      served,
      ...(registry ? { registry } : {}),
      workerNice: config.server.worker_nice,
    });
    if (config.server.worker_nice > 0 && process.platform !== 'linux') {
      logger.info({ platform: process.platform, worker_nice: config.server.worker_nice }, 'thread priorities are not supported on this platform; server.worker_nice has no effect');
    }
    const drift = createDriftServing({ manager, metrics, logger, ...(registry ? { registry } : {}) });
    const c = config.model_control;
    const control = new ModelControl(manager, {
      mode: c.mode,
      startupModels: c.startup_models,
      pollIntervalMs: c.poll_interval_ms,
      ...(registry ? { registry } : {}),
      logger,
    });

    // Kafka and batch-worker doors, and the job status route.
    const streaming = createStreamingServing({ config, metrics, logger });

    // Traffic policies (split, canary, blue-green, shadow) route requests that name no version.
    let planeRef: DataPlane | undefined;
    const traffic = await createTrafficServing({
      config,
      manager,
      plane: () => planeRef!,
      ...(registry ? { registry } : {}),
      ...(metrics.enabled ? { metrics: metrics.registry } : {}),
      logger,
    });

    // The request pipeline (src/pipeline/chain.ts tells its order).
    const serving = servingPolicies({ config, metrics, logger });
    const plane = new DataPlane(manager, {
      policies: (self) => {
        const chain = standardPolicies({
          manager,
          plane: self,
          metrics,
          ...(tracing ? { tracer: tracing.tracer } : {}),
          logger,
          accessLog: config.logging.access_log,
          maxInFlight: config.server.max_inflight_requests,
          optional: { security: security.policies, routing: [traffic.policy, traffic.guard], cache: serving.policies(self), capture: [drift.policy] },
        });
        return hooks.policies ? hooks.policies(chain) : chain;
      },
      maxResponseBytes: config.server.max_response_bytes,
      ...(metrics.enabled ? { inFlight: (model: string, delta: 1 | -1) => metrics.addInFlight(model, delta) } : {}),
    });
    planeRef = plane;

    const http = await createRestApp(plane, {
      bodyLimitBytes: config.server.body_limit_bytes,
      jsonOffloadBytes: config.server.json_offload_bytes,
      jsonDecodeThreads: config.server.json_decode_threads,
      jsonDecodeArriving: config.server.json_decode_arriving,
      workerNice: config.server.worker_nice,
      keepAliveTimeoutMs: config.server.keep_alive_timeout_ms,
      requestTimeoutMs: config.server.request_timeout_ms,
      logger,
      ...(traceContext ? { traceContext } : {}),
      ...(security.tls ? { https: security.tls.serverOptions(), peerCertificate: (ctx, socket) => setPeerCertificateOf(ctx, peerFromTlsSocket(socket)) } : {}),
      plugins: [
        (app, p) => {
          app.get('/metrics', async (req, reply) => {
            await p.control(req.ctx, { action: 'server.metrics', write: false }, () => undefined);
            return reply.type(metrics.contentType).send(await metrics.render());
          });
        },
        adminRoutes({ manager, plane, control, logger, ...(registry ? { registry } : {}) }),
        (app, p) => traffic.routes(app, p),
        (app, p) => streaming.routes(app, p),
        drift.adminRoutes,
        serving.adminRoutes,
      ],
    });
    const rest = new RestDoor(http, config.server.host, config.server.http_port);
    const doors: FrontDoor[] = [rest];
    const grpc =
      config.server.grpc_port >= 0
        ? new GrpcDoor({
            host: config.server.host,
            port: config.server.grpc_port,
            maxMessageBytes: config.server.grpc_max_message_bytes,
            logger,
            ...(traceContext ? { traceContext } : {}),
            ...(security.grpcCredentials
              ? { credentials: security.grpcCredentials, peerCertificate: (ctx, auth) => setPeerCertificateOf(ctx, peerFromGrpcAuthContext(auth as Parameters<typeof peerFromGrpcAuthContext>[0])) }
              : {}),
          })
        : undefined;
    if (grpc) doors.push(grpc);
    doors.push(...streaming.doors);
    const server = new InferdServer(config, logger, manager, plane, http, metrics, doors);
    server.tracing = tracing;
    server.security = security;
    server.traffic = traffic;
    server.streaming = streaming;
    if (security.tls) security.tls.attach(http.server as unknown as import("node:tls").Server);
    server.control = control;
    server.registry = registry;
    server.drift = drift;
    server.servingPolicies = serving;
    const started: FrontDoor[] = [];
    try {
      // The HTTP port opens first, so liveness and startup probes answer while models load.
      for (const door of doors) {
        if (door.startsAfterModels) continue;
        await door.start(plane);
        started.push(door);
      }
    } catch (error) {
      await Promise.all(started.map((d) => d.stop().catch(() => undefined)));
      await http.close().catch(() => undefined);
      await traffic.close().catch(() => undefined);
      await registry?.close();
      await security.close().catch(() => undefined);
      await drift.close().catch(() => undefined);
      await serving.close().catch(() => undefined);
      throw error;
    }
    server.httpPort = rest.port;
    server.grpcPort = grpc?.port ?? -1;
    logger.info(
      { httpPort: server.httpPort, grpcPort: server.grpcPort, repository: repository.root, ...(registry ? { registry: registry.label } : {}), modelControl: c.mode },
      'inferd listening',
    );

    await control.start();
    try {
      for (const door of doors) {
        if (!door.startsAfterModels) continue;
        await door.start(plane);
        started.push(door);
      }
    } catch (error) {
      await server.shutdown(0).catch(() => undefined);
      throw error;
    }
    plane.markStarted();
    const readiness = plane.readiness();
    logger.info({ ready: readiness.ready, failures: readiness.failures }, readiness.ready ? 'inferd ready' : 'inferd started, not ready');
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

  /**
   * The shutdown order, for every door at once: stop taking work (readiness fails, admission
   * refuses, doors stop accepting), wait for accepted work until the deadline, answer what is
   * left with 503, stop the doors, then free models, the registry and tracing.
   */
  private async drainAndClose(deadlineMs: number): Promise<ShutdownResult> {
    const log = this.logger;
    const controlStopped = this.control?.stop();
    const deadline = Date.now() + deadlineMs;
    // Doors stop taking work first (a Kafka door lets its batch in flight commit), then the
    // plane refuses whatever still arrives.
    const doorsDrained = Promise.all(this.doors.map((d) => d.drain(deadline).catch(() => undefined)));
    this.plane.startDraining();
    log.info({ inFlight: this.plane.inFlightCount, deadlineMs }, 'draining');

    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.plane.whenIdle().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    let abandoned = 0;
    if (!timedOut) {
      // Lame duck: stay reachable a moment, answering 503 with Connection: close, so clients
      // with a kept-alive connection learn to go elsewhere rather than meet a reset.
      const lameDuck = Math.min(this.config.shutdown.lame_duck_ms, Math.max(0, deadline - Date.now()));
      if (lameDuck > 0) await new Promise((r) => setTimeout(r, lameDuck));
    }
    if (timedOut) {
      abandoned = this.plane.inFlightCount;
      log.warn({ abandoned }, 'drain deadline passed; answering the remaining requests with 503');
      // Queued requests and runs in progress are answered 503 now; stuck workers are terminated.
      for (const v of this.manager.serving.loaded()) v.forceStop();
      await Promise.race([this.plane.whenIdle(), new Promise((r) => setTimeout(r, 200))]);
    }
    await doorsDrained;
    await Promise.all(this.doors.map((d) => d.stop().catch(() => undefined)));
    await controlStopped;
    await (timedOut ? Promise.race([this.manager.close(0), new Promise((r) => setTimeout(r, 600))]) : this.manager.close());
    await this.traffic?.close().catch(() => undefined);
    await this.streaming?.close().catch(() => undefined);
    await this.drift?.close().catch(() => undefined);
    await this.servingPolicies?.close().catch(() => undefined);
    await this.registry?.close();
    await this.security?.close().catch(() => undefined);
    await this.tracing?.shutdown().catch(() => undefined);
    log.info({ clean: !timedOut, abandoned }, 'shutdown complete');
    return { clean: !timedOut, abandoned };
  }
}

function setPeerCertificateOf(ctx: Parameters<typeof setPeerCertificate>[0], peer: ReturnType<typeof peerFromTlsSocket>): void {
  if (peer !== undefined) setPeerCertificate(ctx, peer);
}
