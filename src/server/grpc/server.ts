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
import * as grpc from '@grpc/grpc-js';
import type { Http2Server, Http2Session } from 'node:http2';
import {
  CancelledError,
  DeadlineExceededError,
  GRPC_STATUS,
  boundedMessage,
  InferdError,
  InvalidInputError,
  UnavailableError,
  toInferdError,
  type ErrorCode,
} from '../../core/errors.js';
import type { DoorName } from '../../core/types.js';
import { createContext, minimalContext, type HeaderReader } from '../../pipeline/context.js';
import { requireName } from '../../pipeline/dataplane.js';
import type { PipelineContext, ServingPlane } from '../../pipeline/types.js';
import {
  decodeInferRequest,
  encodeInferResponse,
  encodeModelConfig,
  encodeModelMetadata,
  encodeModelStatistics,
  encodeRepositoryIndex,
} from '../../codecs/grpc.js';
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
} from '../../codecs/grpc-messages.js';
import { alignSoleRawInput, lendSoleRawInput, noteMessageMemory } from './message-memory.js';
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
  traceContext?: (header: HeaderReader) => unknown;
  /** How often a health Watch re-reads readiness. Default 1000 ms. */
  healthPollMs?: number;
  /** TLS (and client certificates); insecure when absent. */
  credentials?: () => grpc.ServerCredentials;
  /** Tells the context about the caller's verified client certificate (mTLS). */
  peerCertificate?: (ctx: PipelineContext, authContext: ReturnType<grpc.ServerUnaryCall<unknown, unknown>['getAuthContext']>) => void;
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

export function grpcStatusOf(code: ErrorCode): grpc.status {
  return GRPC_STATUS[code] as grpc.status;
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
    const carriesTensors = name === 'ModelInfer' || name === 'ModelStreamInfer';
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          if (carriesTensors) noteMessageMemory(bytes);
          return method.requestDeserialize(bytes);
        } catch (error) {
          return new MalformedMessage(error instanceof Error ? error.message : String(error));
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/** Initial and trailing metadata of an answer: the correlation id and the policies' headers. */
function answerMetadata(ctx: PipelineContext): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(ctx.requestIdKey ?? 'x-request-id', ctx.requestId);
  const extra = ctx.responseHeaders;
  if (extra) for (const name in extra) metadata.set(name, extra[name]!);
  return metadata;
}

/**
 * A call's cancellation: aborted when the client cancelled, the server is shutting down, or the
 * call's deadline has passed. The queue only polls `aborted`, so the deadline costs no timer
 * unless something listens for the abort (then one is armed), and no AbortController is built
 * per call. Listeners get the reason as an AbortSignal's would.
 */
class CallCancellation {
  private cancelled = false;
  private why: InferdError | undefined;
  private listeners: Array<() => void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  deadline: number | undefined;

  get aborted(): boolean {
    return this.cancelled || (this.deadline !== undefined && Date.now() >= this.deadline);
  }

  get reason(): InferdError | undefined {
    if (this.cancelled) return this.why;
    return this.aborted ? new DeadlineExceededError() : undefined;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.cancelled) return;
    (this.listeners ??= []).push(listener);
    if (this.deadline !== undefined && this.timer === undefined) {
      this.timer = setTimeout(() => this.abort(new DeadlineExceededError()), Math.max(0, this.deadline - Date.now()));
    }
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  abort(reason: InferdError): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.why = reason;
    this.dispose();
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  /** The call is over: no deadline timer left behind. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function checkWellFormed<T>(request: T | MalformedMessage): T {
  if (request instanceof MalformedMessage) throw new InvalidInputError(`the request is not a valid protobuf message: ${request.reason}`);
  return request;
}

/** Reads call metadata by lower-case key: the first string value. */
function metadataReader(metadata: grpc.Metadata): HeaderReader {
  return (key) => {
    for (const value of metadata.get(key)) if (typeof value === 'string') return value;
    return undefined;
  };
}

// ---- the server ----

interface CallLike {
  metadata: grpc.Metadata;
  getAuthContext(): ReturnType<grpc.ServerUnaryCall<unknown, unknown>['getAuthContext']>;
  cancelled: boolean;
  getDeadline(): grpc.Deadline;
  sendMetadata(metadata: grpc.Metadata): void;
  on(event: 'cancelled', listener: () => void): unknown;
}

interface OpenCall {
  context: PipelineContext;
  /** A malformed header found while building the context; answered by the handler. */
  contextError: unknown;
  /** Sends the initial metadata (correlation id) once. */
  sendHeaders(): void;
  close(): void;
}

export function createGrpcServer(service: ServingPlane, options: GrpcServerOptions): GrpcServer {
  const logger = options.logger;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const pollMs = options.healthPollMs ?? 1000;
  const inFlight = new Set<CallCancellation>();
  const watches = new Set<() => void>();
  let server: grpc.Server | undefined;
  let draining = false;

  const channelOptions: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    // grpc-js records every call for channelz (a debugging service inferd does not serve) unless
    // told not to; that bookkeeping costs several microseconds of CPU per call.
    'grpc.enable_channelz': 0,
  };
  const k = options.keepalive ?? {};
  if (k.timeMs !== undefined) channelOptions['grpc.keepalive_time_ms'] = k.timeMs;
  if (k.timeoutMs !== undefined) channelOptions['grpc.keepalive_timeout_ms'] = k.timeoutMs;
  if (k.permitWithoutCalls !== undefined) channelOptions['grpc.keepalive_permit_without_calls'] = k.permitWithoutCalls ? 1 : 0;
  if (k.maxConnectionIdleMs !== undefined) channelOptions['grpc.max_connection_idle_ms'] = k.maxConnectionIdleMs;
  if (k.maxConnectionAgeMs !== undefined) channelOptions['grpc.max_connection_age_ms'] = k.maxConnectionAgeMs;
  if (k.maxConnectionAgeGraceMs !== undefined) channelOptions['grpc.max_connection_age_grace_ms'] = k.maxConnectionAgeGraceMs;

  /** Turns a call's deadline, cancellation and metadata into the request's context. */
  function open(call: CallLike, door: DoorName, method: string): OpenCall {
    const raw = call.getDeadline();
    const transportDeadline = raw instanceof Date ? raw.getTime() : raw;
    const controller = new CallCancellation();
    inFlight.add(controller);
    const source = {
      door,
      header: metadataReader(call.metadata),
      signal: controller,
      ...(Number.isFinite(transportDeadline) ? { deadline: transportDeadline } : {}),
      ...(options.traceContext ? { traceContext: options.traceContext } : {}),
    };
    let context: PipelineContext;
    let contextError: unknown;
    try {
      context = createContext(source);
    } catch (error) {
      context = minimalContext(source);
      contextError = error;
    }
    context.route = method;
    options.peerCertificate?.(context, call.getAuthContext());
    let done = false;
    // grpc-js answers DEADLINE_EXCEEDED by itself; the cancellation reads as aborted once the
    // context's deadline has passed, so the data plane drops the work too (no timer per call).
    controller.deadline = context.deadline;
    call.on('cancelled', () => {
      // grpc-js also emits 'cancelled' after a call it has answered: nothing to abort then.
      if (done || controller.aborted) return;
      // A client ends the call at its own deadline, which reaches us a little before ours: that is a timeout.
      const late = context.deadline !== undefined && Date.now() >= context.deadline - DEADLINE_SLACK_MS;
      controller.abort(late ? new DeadlineExceededError() : new CancelledError());
    });
    let headersSent = false;
    return {
      context,
      contextError,
      sendHeaders() {
        if (headersSent || call.cancelled) return;
        headersSent = true;
        call.sendMetadata(answerMetadata(context));
      },
      close() {
        done = true;
        controller.dispose();
        inFlight.delete(controller);
      },
    };
  }

  function toStatus(error: unknown, context: PipelineContext): grpc.ServerErrorResponse {
    const e = toInferdError(error);
    const trailers = answerMetadata(context);
    if (e.retryAfterSeconds !== undefined) trailers.set('retry-after', String(e.retryAfterSeconds));
    const message = boundedMessage(e);
    return Object.assign(new Error(message), { code: GRPC_STATUS[e.code] as grpc.status, details: message, metadata: trailers });
  }

  /**
   * Runs a handler for one request: an error raised before the request reached the pipeline
   * (malformed message or metadata) still goes through it, so admission, security and the
   * access log treat it like any other.
   */
  async function run<Req, Res>(request: Req | MalformedMessage, opened: OpenCall, handler: (request: Req, ctx: PipelineContext) => Res | Promise<Res>): Promise<Res> {
    const ctx = opened.context;
    try {
      if (opened.contextError !== undefined) throw opened.contextError;
      return await handler(checkWellFormed(request), ctx);
    } catch (error) {
      if (ctx.observed) throw error;
      return service.reject(ctx, error);
    }
  }

  /** Wraps a unary handler: context, correlation id, error mapping, no double answers. */
  function unary<Req, Res>(method: string, handler: (request: Req, ctx: PipelineContext) => Res | Promise<Res>): grpc.handleUnaryCall<Req | MalformedMessage, Res> {
    return (call, callback) => {
      const opened = open(call, 'grpc.unary', method);
      const { context, sendHeaders, close } = opened;
      let settled = false;
      const finish = (error: unknown, response?: Res): void => {
        if (settled) return;
        settled = true;
        close();
        if (call.cancelled) return; // nobody is listening; grpc-js already ended the call
        sendHeaders();
        if (error === undefined) callback(null, response);
        else callback(toStatus(error, context));
      };
      run(call.request, opened, handler).then(
        (response) => finish(undefined, response),
        (error: unknown) => finish(error ?? new Error('unknown failure')),
      );
    };
  }

  async function infer(msg: ModelInferRequestMsg, ctx: PipelineContext): Promise<ModelInferResponseMsg> {
    ctx.model = requireName(msg.model_name, 'model_name');
    if (msg.model_version) ctx.version = msg.model_version;
    // A sole large tensor stays in the message's memory, which goes to the worker whole (message-memory.ts).
    const memory = alignSoleRawInput(msg);
    const decoded = decodeInferRequest(msg);
    if (memory !== undefined) lendSoleRawInput(decoded.request, memory);
    const response = await service.infer(ctx, decoded.request);
    if (response.id === undefined && decoded.request.id !== undefined) response.id = decoded.request.id;
    return encodeInferResponse(response, decoded.typedOutput);
  }

  const version = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

  const inference: grpc.UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', async (_req, ctx) => ({ live: await service.live(ctx) })),
    ServerReady: unary('ServerReady', async (_req, ctx) => ({ ready: !draining && (await service.ready(ctx)).ready })),
    ModelReady: unary('ModelReady', async (req: NameVersionMsg, ctx) => {
      const name = requireName(req.name, 'name');
      ctx.model = name;
      try {
        return { ready: await service.modelReady(ctx, name, version(req.version)) };
      } catch (error) {
        // As Triton does: an unknown model is simply not ready.
        if (toInferdError(error).code === 'NOT_FOUND') return { ready: false };
        throw error;
      }
    }),
    ServerMetadata: unary('ServerMetadata', (_req, ctx) => service.metadata(ctx)),
    ModelMetadata: unary('ModelMetadata', async (req: NameVersionMsg, ctx) =>
      encodeModelMetadata(await service.modelMetadata(ctx, requireName(req.name, 'name'), version(req.version))),
    ),
    ModelConfig: unary('ModelConfig', async (req: NameVersionMsg, ctx) => ({
      config: encodeModelConfig(await service.modelMetadata(ctx, requireName(req.name, 'name'), version(req.version))),
    })),
    ModelInfer: unary('ModelInfer', infer),
    ModelStreamInfer: streamInfer,
    ModelStatistics: unary('ModelStatistics', async (req: NameVersionMsg, ctx) => ({
      model_stats: (await service.modelStatistics(ctx, version(req.name), version(req.version))).map(encodeModelStatistics),
    })),
    RepositoryIndex: unary('RepositoryIndex', async (req: RepositoryIndexRequestMsg, ctx) => encodeRepositoryIndex(await service.repositoryIndex(ctx, req.ready === true))),
    RepositoryModelLoad: unary('RepositoryModelLoad', async (req: RepositoryModelRequestMsg, ctx) => {
      const name = requireName(req.model_name, 'model_name');
      const overrides = Object.keys(req.parameters ?? {});
      if (overrides.length > 0) {
        throw new InvalidInputError(`loading with parameters (${overrides.join(', ')}) is not supported; the repository's configuration is used`);
      }
      await service.loadModel(ctx, name);
      return {};
    }),
    RepositoryModelUnload: unary('RepositoryModelUnload', async (req: RepositoryModelRequestMsg, ctx) => {
      // Parameters such as unload_dependents are accepted and have nothing to act on.
      await service.unloadModel(ctx, requireName(req.model_name, 'model_name'));
      return {};
    }),
  };

  /** Bidirectional streaming inference: each request is answered independently, as it completes. */
  function streamInfer(call: grpc.ServerDuplexStream<ModelInferRequestMsg | MalformedMessage, ModelStreamInferResponseMsg>): void {
    const opened = open(call, 'grpc.stream', 'ModelStreamInfer');
    const { context, sendHeaders, close } = opened;
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
      // Each message is its own request: its own id, deadline and pipeline run.
      const requestContext: PipelineContext = { ...context, requestId: `${context.requestId}.${sequence}`, responseHeaders: {} };
      delete requestContext.observed;
      const requestId = message instanceof MalformedMessage ? '' : (message.id ?? '');
      run(message, { ...opened, context: requestContext }, infer)
        .then(
          (response): ModelStreamInferResponseMsg => ({ error_message: '', infer_response: response }),
          (error: unknown): ModelStreamInferResponseMsg => {
            const e = toInferdError(error);
            const model = message instanceof MalformedMessage ? {} : { model_name: message.model_name ?? '', model_version: message.model_version ?? '' };
            return {
              error_message: boundedMessage(e),
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
    if (SERVER_NAMES.has(name)) return service.readiness().ready ? 'SERVING' : 'NOT_SERVING';
    try {
      return service.isModelReady(name) ? 'SERVING' : 'NOT_SERVING';
    } catch (error) {
      if (toInferdError(error).code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  const health: grpc.UntypedServiceImplementation = {
    Check: unary('Check', async (req: HealthCheckRequestMsg, ctx): Promise<HealthCheckResponseMsg> => {
      // A probe: it passes the pipeline (admission, security) like every call, then reads state.
      await service.live(ctx);
      const status = healthOf(req.service ?? '');
      if (status === undefined) {
        throw new InferdError('NOT_FOUND', `unknown service '${req.service}'`);
      }
      return { status };
    }),
    Watch: (call: grpc.ServerWritableStream<HealthCheckRequestMsg | MalformedMessage, HealthCheckResponseMsg>) => {
      const { sendHeaders, close } = open(call, 'grpc.stream', 'Watch');
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
        s.bindAsync(`${host}:${options.port}`, options.credentials?.() ?? grpc.ServerCredentials.createInsecure(), (error, bound) =>
          error ? reject(error) : resolve(bound),
        );
      });
      widenReceiveWindows(s, logger);
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

/**
 * HTTP/2 lets a client send 64 KB on a connection, and on each stream, before the server grants
 * more; grpc-js's server keeps those defaults (its `grpc-node.flow_control_window` option is read
 * by clients only). A 600 KB tensor then crosses in ten windows, each waiting for the server's
 * event loop to read and answer with a WINDOW_UPDATE. Each new session gets windows of
 * RECEIVE_WINDOW_BYTES instead, so one large request arrives without waiting. Memory stays bounded
 * by grpc.max_receive_message_length per call, which grpc-js enforces as the bytes come in.
 */
const RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024;

function widenReceiveWindows(server: grpc.Server, logger: GrpcLogger | undefined): void {
  // grpc-js keeps its HTTP/2 servers in a private map; when a version no longer has it, the
  // default windows stay (slower for large messages, nothing else changes).
  const servers = (server as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    logger?.warn({}, 'cannot reach the gRPC server\'s HTTP/2 sessions; large requests keep the default 64 KB flow-control windows');
    return;
  }
  for (const http2Server of servers.keys()) {
    http2Server.on('session', (session: Http2Session) => {
      try {
        session.settings({ initialWindowSize: RECEIVE_WINDOW_BYTES });
        session.setLocalWindowSize(RECEIVE_WINDOW_BYTES);
      } catch (error) {
        logger?.warn({ err: (error as Error).message }, 'widening a gRPC session\'s flow-control window failed');
      }
    });
  }
}
