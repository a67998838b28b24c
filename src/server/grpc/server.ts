/**
 * The gRPC front door: inference.GRPCInferenceService (Open Inference Protocol, with Triton's
 * repository, statistics, configuration and streaming RPCs) and grpc.health.v1.Health.
 *
 * It decodes messages into the shared types, calls the data plane and encodes the answer; the
 * policies (validation against the model, batching, limits, metrics, access logs) live in the
 * data plane. What belongs here is the transport: deadlines and cancellation become the
 * RequestContext, correlation ids come from metadata and are echoed back, errors become status
 * codes, and shutdown drains in-flight calls.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  CancelledError,
  DeadlineExceededError,
  InferdError,
  InvalidInputError,
  UnavailableError,
  toInferdError,
  type ErrorCode,
} from '../../core/errors.js';
import type { InferenceService, RequestContext } from '../../core/types.js';
import {
  decodeInferRequest,
  encodeInferResponse,
  encodeModelConfig,
  encodeModelMetadata,
  encodeModelStatistics,
  encodeRepositoryIndex,
} from './codec.js';
import type {
  HealthCheckRequestMsg,
  HealthCheckResponseMsg,
  ModelInferRequestMsg,
  ModelInferResponseMsg,
  ModelStreamInferResponseMsg,
  NameVersionMsg,
  RepositoryIndexRequestMsg,
  RepositoryModelRequestMsg,
  ServingStatus,
} from './messages.js';
import { HEALTH_SERVICE, INFERENCE_SERVICE, serviceDefinition } from './proto.js';

/** The subset of a pino logger the door uses. */
export interface GrpcLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface GrpcKeepaliveOptions {
  /** Interval of the server's keepalive pings on idle connections. */
  timeMs?: number;
  /** How long a ping may go unanswered before the connection is dropped. */
  timeoutMs?: number;
  /** Ping connections that have no call in flight too (a client-side notion; grpc-js servers ping every connection). */
  permitWithoutCalls?: boolean;
  /** Close connections idle this long. */
  maxConnectionIdleMs?: number;
  /** Recycle connections after this long, so clients rebalance across replicas. */
  maxConnectionAgeMs?: number;
  /** Grace given to calls in flight on a connection being recycled. */
  maxConnectionAgeGraceMs?: number;
}

export interface GrpcServerOptions {
  host: string;
  /** 0 picks a free port; start() returns the one bound. */
  port: number;
  /** Largest message accepted or sent; larger ones fail with RESOURCE_EXHAUSTED. Default 64 MiB. */
  maxMessageBytes?: number;
  keepalive?: GrpcKeepaliveOptions;
  logger?: GrpcLogger;
  /** Extracts the caller's W3C trace context from call metadata (tracing on). */
  traceContext?: (headers: Record<string, string | string[] | undefined>) => unknown;
  /** How often a health Watch re-reads readiness. Default 1000 ms. */
  healthPollMs?: number;
}

export interface GrpcServer {
  /** Binds and serves; resolves to the bound port. */
  start(): Promise<number>;
  /**
   * Stops accepting calls, ends health watches, and lets calls in flight finish for up to
   * `deadlineMs` milliseconds before cutting them off. Resolves when the server is closed.
   */
  drain(deadlineMs: number): Promise<void>;
  /** Closes every connection now; calls in flight fail and their work is aborted. */
  forceStop(): void;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A cancel arriving this close to the deadline is the client's deadline firing, not a cancel. */
const DEADLINE_SLACK_MS = 50;

/** How long aborted calls get to answer before a forced drain cuts the connections. */
const ABORT_GRACE_MS = 250;

const STATUS: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  PAYLOAD_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  CANCELLED: grpc.status.CANCELLED,
  INTERNAL: grpc.status.INTERNAL,
};

export function grpcStatusOf(code: ErrorCode): grpc.status {
  return STATUS[code];
}

/** Stands in for a request that failed to parse, so the handler can answer INVALID_ARGUMENT. */
class MalformedMessage {
  constructor(readonly reason: string) {}
}

/**
 * grpc-js answers a message that fails to parse with INTERNAL; a malformed request is the
 * caller's fault, so parse failures are handed to the handler instead.
 */
function lenientDefinition(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return new MalformedMessage(error instanceof Error ? error.message : String(error));
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

function checkWellFormed<T>(request: T | MalformedMessage): T {
  if (request instanceof MalformedMessage) throw new InvalidInputError(`the request is not a valid protobuf message: ${request.reason}`);
  return request;
}

// ---- correlation ids ----

const SAFE_ID = /^[\w.:/+=@-]{1,128}$/;
const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}/;

function firstString(metadata: grpc.Metadata, key: string): string | undefined {
  for (const value of metadata.get(key)) if (typeof value === 'string') return value.trim();
  return undefined;
}

/** The caller's correlation id (x-request-id, x-correlation-id, or a traceparent's trace id), or a new one. */
export function requestIdOf(metadata: grpc.Metadata): string {
  for (const key of ['x-request-id', 'x-correlation-id']) {
    const value = firstString(metadata, key);
    if (value !== undefined && SAFE_ID.test(value)) return value;
  }
  const trace = TRACEPARENT.exec(firstString(metadata, 'traceparent') ?? '');
  if (trace !== null && !/^0+$/.test(trace[1]!)) return trace[1]!;
  return randomUUID();
}

// ---- the server ----

interface CallLike {
  metadata: grpc.Metadata;
  cancelled: boolean;
  getDeadline(): grpc.Deadline;
  sendMetadata(metadata: grpc.Metadata): void;
  on(event: 'cancelled', listener: () => void): unknown;
}

interface OpenCall {
  context: RequestContext;
  /** Sends the initial metadata (correlation id) once. */
  sendHeaders(): void;
  close(): void;
}

export function createGrpcServer(service: InferenceService, options: GrpcServerOptions): GrpcServer {
  const logger = options.logger;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const pollMs = options.healthPollMs ?? 1000;
  const inFlight = new Set<AbortController>();
  const watches = new Set<() => void>();
  let server: grpc.Server | undefined;
  let draining = false;

  const channelOptions: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  };
  const k = options.keepalive ?? {};
  if (k.timeMs !== undefined) channelOptions['grpc.keepalive_time_ms'] = k.timeMs;
  if (k.timeoutMs !== undefined) channelOptions['grpc.keepalive_timeout_ms'] = k.timeoutMs;
  if (k.permitWithoutCalls !== undefined) channelOptions['grpc.keepalive_permit_without_calls'] = k.permitWithoutCalls ? 1 : 0;
  if (k.maxConnectionIdleMs !== undefined) channelOptions['grpc.max_connection_idle_ms'] = k.maxConnectionIdleMs;
  if (k.maxConnectionAgeMs !== undefined) channelOptions['grpc.max_connection_age_ms'] = k.maxConnectionAgeMs;
  if (k.maxConnectionAgeGraceMs !== undefined) channelOptions['grpc.max_connection_age_grace_ms'] = k.maxConnectionAgeGraceMs;

  /** Turns a call's deadline, cancellation and metadata into a RequestContext. */
  function open(call: CallLike): OpenCall {
    const requestId = requestIdOf(call.metadata);
    const controller = new AbortController();
    inFlight.add(controller);
    const context: RequestContext = { requestId, protocol: 'grpc', signal: controller.signal };
    if (options.traceContext) context.trace = options.traceContext(call.metadata.getMap() as Record<string, string>);
    const raw = call.getDeadline();
    const deadline = raw instanceof Date ? raw.getTime() : raw;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    if (Number.isFinite(deadline)) {
      context.deadline = deadline;
      // grpc-js answers DEADLINE_EXCEEDED by itself; aborting lets the data plane drop the work too.
      timer = setTimeout(() => controller.abort(new DeadlineExceededError()), Math.max(0, deadline - Date.now()));
    }
    call.on('cancelled', () => {
      // grpc-js also emits 'cancelled' after a call it has answered: nothing to abort then.
      if (done || controller.signal.aborted) return;
      // A client ends the call at its own deadline, which reaches us a little before ours: that is a timeout.
      const late = context.deadline !== undefined && Date.now() >= context.deadline - DEADLINE_SLACK_MS;
      controller.abort(late ? new DeadlineExceededError() : new CancelledError());
    });
    let headersSent = false;
    return {
      context,
      sendHeaders() {
        if (headersSent || call.cancelled) return;
        headersSent = true;
        const headers = new grpc.Metadata();
        headers.set('x-request-id', requestId);
        call.sendMetadata(headers);
      },
      close() {
        done = true;
        if (timer !== undefined) clearTimeout(timer);
        inFlight.delete(controller);
      },
    };
  }

  function toStatus(error: unknown, method: string, requestId: string): grpc.ServerErrorResponse {
    const e = toInferdError(error);
    if (e.code === 'INTERNAL') logger?.error({ err: error, method, requestId }, 'gRPC call failed');
    const trailers = new grpc.Metadata();
    if (e.retryAfterSeconds !== undefined) trailers.set('retry-after', String(e.retryAfterSeconds));
    return Object.assign(new Error(e.message), { code: STATUS[e.code], details: e.message, metadata: trailers });
  }

  /** Wraps a unary handler: context, correlation id, error mapping, no double answers. */
  function unary<Req, Res>(
    method: string,
    handler: (request: Req, context: RequestContext) => Res | Promise<Res>,
  ): grpc.handleUnaryCall<Req | MalformedMessage, Res> {
    return (call, callback) => {
      const { context, sendHeaders, close } = open(call);
      let settled = false;
      const finish = (error: unknown, response?: Res): void => {
        if (settled) return;
        settled = true;
        close();
        if (call.cancelled) return; // nobody is listening; grpc-js already ended the call
        sendHeaders();
        if (error === undefined) callback(null, response);
        else callback(toStatus(error, method, context.requestId));
      };
      try {
        const request = checkWellFormed(call.request);
        Promise.resolve(handler(request, context)).then(
          (response) => finish(undefined, response),
          (error: unknown) => finish(error ?? new Error('unknown failure')),
        );
      } catch (error) {
        finish(error ?? new Error('unknown failure'));
      }
    };
  }

  async function infer(msg: ModelInferRequestMsg, context: RequestContext): Promise<ModelInferResponseMsg> {
    const decoded = decodeInferRequest(msg);
    const response = await service.infer(decoded.modelName, decoded.modelVersion, decoded.request, context);
    if (response.id === undefined && decoded.request.id !== undefined) response.id = decoded.request.id;
    return encodeInferResponse(response, decoded.typedOutput);
  }

  function requireName(name: string | undefined, field: string): string {
    if (name === undefined || name === '') throw new InvalidInputError(`the request has no '${field}'`);
    return name;
  }

  const version = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

  const inference: grpc.UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', () => ({ live: service.live() })),
    ServerReady: unary('ServerReady', () => ({ ready: !draining && service.ready() })),
    ModelReady: unary('ModelReady', (req: NameVersionMsg) => {
      const name = requireName(req.name, 'name');
      try {
        return { ready: service.modelReady(name, version(req.version)) };
      } catch (error) {
        // As Triton does: an unknown model is simply not ready.
        if (toInferdError(error).code === 'NOT_FOUND') return { ready: false };
        throw error;
      }
    }),
    ServerMetadata: unary('ServerMetadata', () => service.metadata()),
    ModelMetadata: unary('ModelMetadata', (req: NameVersionMsg) =>
      encodeModelMetadata(service.modelMetadata(requireName(req.name, 'name'), version(req.version))),
    ),
    ModelConfig: unary('ModelConfig', (req: NameVersionMsg) => ({
      config: encodeModelConfig(service.modelMetadata(requireName(req.name, 'name'), version(req.version))),
    })),
    ModelInfer: unary('ModelInfer', infer),
    ModelStreamInfer: streamInfer,
    ModelStatistics: unary('ModelStatistics', (req: NameVersionMsg) => ({
      model_stats: service.modelStatistics(version(req.name), version(req.version)).map(encodeModelStatistics),
    })),
    RepositoryIndex: unary('RepositoryIndex', async (req: RepositoryIndexRequestMsg) =>
      encodeRepositoryIndex(await service.repositoryIndex(req.ready === true)),
    ),
    RepositoryModelLoad: unary('RepositoryModelLoad', async (req: RepositoryModelRequestMsg) => {
      const name = requireName(req.model_name, 'model_name');
      const overrides = Object.keys(req.parameters ?? {});
      if (overrides.length > 0) {
        throw new InvalidInputError(`loading with parameters (${overrides.join(', ')}) is not supported; the repository's configuration is used`);
      }
      await service.loadModel(name);
      return {};
    }),
    RepositoryModelUnload: unary('RepositoryModelUnload', async (req: RepositoryModelRequestMsg) => {
      // Parameters such as unload_dependents are accepted and have nothing to act on.
      await service.unloadModel(requireName(req.model_name, 'model_name'));
      return {};
    }),
  };

  /** Bidirectional streaming inference: each request is answered independently, as it completes. */
  function streamInfer(call: grpc.ServerDuplexStream<ModelInferRequestMsg | MalformedMessage, ModelStreamInferResponseMsg>): void {
    const { context, sendHeaders, close } = open(call);
    sendHeaders();
    let pending = 0;
    let inputEnded = false;
    let sequence = 0;
    const maybeEnd = (): void => {
      if (!inputEnded || pending > 0) return;
      close();
      if (!call.cancelled && call.writable) call.end();
    };
    call.on('data', (message: ModelInferRequestMsg | MalformedMessage) => {
      pending++;
      sequence++;
      const requestContext: RequestContext = { ...context, requestId: `${context.requestId}.${sequence}` };
      const requestId = message instanceof MalformedMessage ? '' : (message.id ?? '');
      Promise.resolve()
        .then(() => infer(checkWellFormed(message), requestContext))
        .then(
          (response): ModelStreamInferResponseMsg => ({ error_message: '', infer_response: response }),
          (error: unknown): ModelStreamInferResponseMsg => {
            const e = toInferdError(error);
            if (e.code === 'INTERNAL') logger?.error({ err: error, method: 'ModelStreamInfer', requestId: requestContext.requestId }, 'gRPC call failed');
            const model = message instanceof MalformedMessage ? {} : { model_name: message.model_name ?? '', model_version: message.model_version ?? '' };
            return {
              error_message: e.message,
              infer_response: { model_name: '', model_version: '', ...model, id: requestId, outputs: [], raw_output_contents: [] },
            };
          },
        )
        .then((answer) => {
          if (!call.cancelled && call.writable) call.write(answer);
        })
        .catch((error: unknown) => logger?.warn({ err: error, requestId: requestContext.requestId }, 'gRPC stream write failed'))
        .finally(() => {
          pending--;
          maybeEnd();
        });
    });
    call.on('end', () => {
      inputEnded = true;
      maybeEnd();
    });
    call.on('cancelled', () => {
      inputEnded = true;
      close();
    });
    call.on('error', () => close()); // the client went away; 'cancelled' has aborted the work
  }

  // ---- health ----

  const SERVER_NAMES = new Set(['', INFERENCE_SERVICE]);

  /** The serving status of the server ('' or the service name) or of a model; undefined if unknown. */
  function healthOf(name: string): ServingStatus | undefined {
    if (draining) return 'NOT_SERVING';
    if (SERVER_NAMES.has(name)) return service.live() && service.ready() ? 'SERVING' : 'NOT_SERVING';
    try {
      return service.modelReady(name) ? 'SERVING' : 'NOT_SERVING';
    } catch (error) {
      if (toInferdError(error).code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  const health: grpc.UntypedServiceImplementation = {
    Check: unary('Check', (req: HealthCheckRequestMsg): HealthCheckResponseMsg => {
      const status = healthOf(req.service ?? '');
      if (status === undefined) {
        throw new InferdError('NOT_FOUND', `unknown service '${req.service}'`);
      }
      return { status };
    }),
    Watch: (call: grpc.ServerWritableStream<HealthCheckRequestMsg | MalformedMessage, HealthCheckResponseMsg>) => {
      const { sendHeaders, close } = open(call);
      sendHeaders();
      const name = call.request instanceof MalformedMessage ? '' : (call.request.service ?? '');
      let last: ServingStatus | undefined;
      const poll = (): void => {
        let status: ServingStatus;
        try {
          status = healthOf(name) ?? 'SERVICE_UNKNOWN';
        } catch {
          status = 'UNKNOWN';
        }
        if (status !== last && !call.cancelled && call.writable) {
          last = status;
          call.write({ status });
        }
      };
      const timer = setInterval(poll, pollMs);
      const stop = (): void => {
        clearInterval(timer);
        watches.delete(stop);
        close();
      };
      const finish = (): void => {
        poll(); // tell the watcher the server stopped serving
        stop();
        if (!call.cancelled && call.writable) call.end();
      };
      watches.add(finish);
      call.on('cancelled', stop);
      call.on('error', stop);
      poll();
    },
  };

  function forceStop(): void {
    draining = true;
    for (const stop of [...watches]) stop();
    for (const controller of inFlight) controller.abort(new UnavailableError('the server is shutting down'));
    inFlight.clear();
    server?.forceShutdown();
  }

  return {
    async start(): Promise<number> {
      if (server !== undefined) throw new Error('the gRPC server is already started');
      server = new grpc.Server(channelOptions);
      server.addService(lenientDefinition(serviceDefinition(INFERENCE_SERVICE)), inference);
      server.addService(lenientDefinition(serviceDefinition(HEALTH_SERVICE)), health);
      const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
      const s = server;
      const port = await new Promise<number>((resolve, reject) => {
        s.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
          error ? reject(error) : resolve(bound),
        );
      });
      logger?.info({ host: options.host, port, maxMessageBytes }, 'gRPC server listening');
      return port;
    },

    drain(deadlineMs: number): Promise<void> {
      const s = server;
      if (s === undefined) return Promise.resolve();
      draining = true;
      for (const finish of [...watches]) finish();
      logger?.info({ inFlight: inFlight.size, deadlineMs }, 'gRPC server draining');
      return new Promise<void>((resolve) => {
        const timer = setTimeout(
          () => {
            logger?.warn({ inFlight: inFlight.size }, 'gRPC drain deadline passed; closing the remaining calls');
            // Abort first and give the calls a moment to answer UNAVAILABLE, which clients retry
            // elsewhere; cutting the connections at once would leave them only a bare CANCELLED.
            for (const controller of inFlight) controller.abort(new UnavailableError('the server is shutting down'));
            const cutoff = Date.now() + ABORT_GRACE_MS;
            const wait = setInterval(() => {
              if (inFlight.size > 0 && Date.now() < cutoff) return;
              clearInterval(wait);
              forceStop();
              resolve();
            }, 10);
          },
          Math.max(0, Math.min(deadlineMs, 2 ** 31 - 1)),
        );
        s.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },

    forceStop,
  };
}
