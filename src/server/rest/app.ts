/**
 * The REST front door: the Open Inference Protocol (KServe V2) with the binary tensor
 * extension, KServe V1 `:predict`, three-tier health, statistics, the repository API, and the
 * routes other modules plug in (metrics, admin), on Fastify. Every route builds the request's
 * context once (onRequest), decodes, calls one data-plane method, and encodes; the policies
 * (admission, validation, metrics, access log...) all run in the data plane's pipeline.
 */
import { maxHeaderSize as httpMaxHeaderSize, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import Fastify, { LogController, type onSendHookHandler, type preParsingHookHandler, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { errorBody, InvalidInputError, InferdError, toInferdError } from '../../core/errors.js';
import type { DoorName, InferenceRequest, InferenceResponse } from '../../core/types.js';
import { binaryCodec } from '../../codecs/binary-request.js';
import { encodeModelConfig } from '../../codecs/grpc.js';
import { decodeInferRequest, encodeInferResponse, parseJsonBody, parseV1JsonBody } from '../../codecs/json.js';
import { JsonDecodePool } from '../../codecs/json-decode-pool.js';
import { decodeV1Instances, encodeV1Predictions, parseV1Body } from '../../codecs/v1.js';
import { correlationIdOf, createContext, minimalContext, recordReader, type ContextSource, type HeaderReader } from '../../pipeline/context.js';
import type { DataPlane } from '../../pipeline/dataplane.js';
import type { PipelineContext } from '../../pipeline/types.js';
import { binaryBodyHook, lendSoleTensor } from './binary-body.js';
import { divertBody, isIdentityEncoding } from './diverted-body.js';
import { toHttpError } from './errors.js';
import { DeferredChildLogger } from './request-logger.js';

export interface RestOptions {
  bodyLimitBytes: number;
  keepAliveTimeoutMs: number;
  requestTimeoutMs: number;
  logger: Logger;
  /** Extra routes (metrics, admin) registered by other modules. */
  plugins?: Array<(app: FastifyInstance, plane: DataPlane) => void | Promise<void>>;
  /** Extracts the caller's W3C trace context into each request's context (tracing on). */
  traceContext?: (header: HeaderReader) => unknown;
  /** HTTPS options (TLS, client certificates); plain HTTP when absent. */
  https?: import('node:tls').TlsOptions;
  /** Tells the context about the caller's verified client certificate (mTLS). */
  peerCertificate?: (ctx: PipelineContext, socket: import('node:tls').TLSSocket) => void;
  /** JSON infer bodies of at least this many bytes are decoded in a decoder thread; 0 = never. */
  jsonOffloadBytes?: number;
  /** Decoder threads for those bodies (default 1). */
  jsonDecodeThreads?: number;
  /** Decode those bodies while they arrive, when their length is known (default false). */
  jsonDecodeArriving?: boolean;
  /** Nice value of the decoder threads (server.worker_nice). */
  workerNice?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's pipeline context, built once in onRequest. */
    ctx: PipelineContext;
    /** A malformed header found while building the context; answered by the route. */
    contextError: unknown;
    /** Set when the client goes away before its answer is written. */
    cancellation: { aborted: boolean };
    /** A large JSON body being decoded while it arrives. */
    arrivingDecode?: Promise<InferenceRequest>;
  }
}

type ModelParams = { model?: string; version?: string; target?: string };

function doorOf(url: string, headers: Record<string, unknown>): DoorName {
  if (url.startsWith('/v2/admin')) return 'admin';
  if (url.startsWith('/v1/')) return 'rest.v1';
  return headers['inference-header-content-length'] !== undefined ? 'rest.binary' : 'rest.v2';
}

export async function createRestApp(plane: DataPlane, options: RestOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.https ? { https: options.https } : {}),
    loggerInstance: options.logger as FastifyBaseLogger,
    // The pipeline writes one access line per request; Fastify's own two are off.
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is built only if the request logs something (rarely: errors).
    childLoggerFactory: (logger, bindings, options) => new DeferredChildLogger(logger, bindings, options),
    bodyLimit: options.bodyLimitBytes,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    // The id is read once here and kept on the raw request for the context built in onRequest.
    genReqId: (req) => {
      const header = recordReader(req.headers);
      const correlation = correlationIdOf(header);
      (req as { [CORRELATION]?: Seen })[CORRELATION] = { correlation, header };
      return correlation.id;
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    // Errors the framework finds before a route runs, in the server's own error format.
    frameworkErrors: (error, _req, reply) => {
      const r = reply as unknown as FastifyReply;
      if (plane.isDraining) r.header('connection', 'close');
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        return r.code(414).send({ error: `a path segment of the URL is longer than ${MAX_PARAM_LENGTH} characters` });
      }
      return r.code(400).send({ error: 'the request URL is malformed' });
    },
    // A request the HTTP parser refuses (headers too large, malformed) never reaches a route.
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      if (!socket.writable) return socket.destroy();
      const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({ error: tooLarge ? `the request headers are larger than the limit of ${maxHeaderSize()} bytes` : 'the request is not valid HTTP' });
      const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    },
  });
  // Routes by method, so a known path asked with another method answers 405 with Allow.
  const routes: Array<{ method: string; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const pattern = new RegExp(`^${route.url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+')}/?$`);
    for (const method of methods) routes.push({ method, pattern });
  });
  app.decorateRequest('ctx', null as unknown as PipelineContext);
  app.decorateRequest('contextError', undefined);
  app.decorateRequest('cancellation', null as unknown as { aborted: boolean });
  let httpInFlight = 0;

  // 'close' fires whether the response finished or the client went away mid-request, so the
  // count cannot leak (onResponse does not run for aborted requests). One function for all
  // requests: it finds the request's cancellation on the response it is called on.
  function responseClosed(this: ServerResponse & { [CANCELLATION]?: { aborted: boolean } }): void {
    httpInFlight--;
    if (!this.writableFinished) this[CANCELLATION]!.aborted = true;
  }
  const traceContext = options.traceContext;

  app.addHook('onRequest', (request, reply, done) => {
    httpInFlight++;
    const cancellation = { aborted: false };
    request.cancellation = cancellation;
    const raw = reply.raw as ServerResponse & { [CANCELLATION]?: { aborted: boolean } };
    raw[CANCELLATION] = cancellation;
    raw.on('close', responseClosed);
    const params = request.params as ModelParams | undefined;
    const url = request.routeOptions.url;
    const seen = (request.raw as { [CORRELATION]?: Seen })[CORRELATION];
    const header = seen?.header ?? recordReader(request.headers);
    const source: ContextSource = { door: doorOf(url ?? request.url, request.headers), header, signal: cancellation };
    if (seen) source.correlation = seen.correlation;
    if (params?.model !== undefined) source.model = params.model;
    if (params?.version !== undefined) source.version = params.version;
    if (traceContext) source.traceContext = traceContext;
    try {
      request.ctx = createContext(source);
    } catch (error) {
      request.ctx = minimalContext(source);
      request.contextError = error;
    }
    request.ctx.route = url ?? 'unmatched';
    if (options.peerCertificate && 'encrypted' in request.raw.socket) options.peerCertificate(request.ctx, request.raw.socket as import('node:tls').TLSSocket);
    reply.header(request.ctx.requestIdKey ?? 'x-request-id', request.ctx.requestId);
    done();
  });

  // Headers the pipeline's policies asked for; while draining every answer closes its
  // connection so keep-alive clients move elsewhere and the listener can close.
  const finalHeaders = (request: FastifyRequest, reply: FastifyReply): void => {
    const extra = request.ctx?.responseHeaders;
    if (extra) for (const name in extra) reply.header(name, extra[name]!);
    if (plane.isDraining) reply.header('connection', 'close');
  };
  // Added to every route but the inference routes, which set them where they answer: without an
  // onSend hook Fastify sends an answer with no hook runner (a closure and a call per request).
  // The error and not-found handlers set them too, for the answers no route's hooks reach.
  const onSendFinalHeaders: onSendHookHandler = (request, reply, payload, done) => {
    finalHeaders(request, reply);
    done(null, payload);
  };
  app.addHook('onRoute', (route) => {
    if ((route.config as { ownHeaders?: boolean } | undefined)?.ownHeaders === true) return;
    const own = route.onSend;
    route.onSend = own === undefined ? [onSendFinalHeaders] : [onSendFinalHeaders, ...(Array.isArray(own) ? own : [own])];
  });

  app.setErrorHandler(async (error, request, reply) => {
    let failure: unknown = error;
    // A request refused before it reached the pipeline (body parsing, limits) still goes
    // through it, so admission, security and the access log treat it like any other.
    let refusal = toHttpError(error).error;
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      refusal = new InvalidInputError(`the request body does not decode as its Content-Encoding says (${(error as Error).message})`);
    }
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      refusal = new InferdError('PAYLOAD_TOO_LARGE', `the request body is larger than the limit of ${options.bodyLimitBytes} bytes (server.body_limit_bytes); send large tensors with the binary extension or over gRPC`);
    }
    failure = refusal;
    if (request.ctx && !request.ctx.observed) failure = await plane.reject(request.ctx, refusal).catch((e: unknown) => e);
    const e = toHttpError(failure);
    finalHeaders(request, reply);
    if (e.retryAfterSeconds !== undefined) reply.header('retry-after', String(e.retryAfterSeconds));
    return reply.code(e.status).send(errorBody(e.error));
  });

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    const refusal =
      allowed.length > 0
        ? new InferdError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path.slice(0, 200)}; use ${allowed.join(', ')}`, { details: {} })
        : new InferdError('NOT_FOUND', `no route for ${request.method} ${path.slice(0, 200)}`);
    const failure = await plane.reject(request.ctx, refusal).catch((e: unknown) => e);
    const e = toHttpError(failure);
    finalHeaders(request, reply);
    if (e.status === 405) reply.header('allow', allowed.join(', '));
    return reply.code(e.status).send(errorBody(e.error));
  });

  // Compressed bodies are decoded (and still bounded by the body limit, which counts decoded
  // bytes); an encoding the server does not know is refused rather than read as plain.
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const header = request.headers['content-encoding'];
    if (header === undefined) return done(null, payload);
    const encoding = header.trim().toLowerCase();
    if (encoding === '' || encoding === 'identity') return done(null, payload);
    const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : undefined;
    if (decoder === undefined) return done(new InferdError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding '${encoding.slice(0, 40)}' is not supported; send gzip, deflate, br or no encoding`));
    // Fastify checks Content-Length against the bytes received, not the decoded ones.
    const counted = decoder as typeof decoder & { receivedEncodedLength: number };
    counted.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => (counted.receivedEncodedLength += chunk.length));
    done(null, payload.pipe(decoder));
  });

  /** Answers the malformed header found in onRequest, if any. */
  const checkContext = (req: FastifyRequest): PipelineContext => {
    if (req.contextError !== undefined) throw req.contextError;
    return req.ctx;
  };

  // Control requests (repository load/unload/index) carry small optional JSON bodies; clients
  // differ in the content type they send, so any type is read as JSON when it has a body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new InvalidInputError(`the request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });

  // ---- health: liveness never touches models; readiness and startup report the data plane ----
  const live = async (req: FastifyRequest, reply: FastifyReply) => {
    await plane.live(checkContext(req));
    return reply.code(200).send({ status: 'alive' });
  };
  const ready = async (req: FastifyRequest, reply: FastifyReply) => {
    const r = await plane.ready(checkContext(req));
    if (r.ready) return reply.code(200).send({ status: 'ready' });
    return reply.code(503).send({ status: r.status, ...(r.failures.length > 0 ? { failures: r.failures } : {}) });
  };
  const startup = async (req: FastifyRequest, reply: FastifyReply) =>
    (await plane.startup(checkContext(req))) ? reply.code(200).send({ status: 'started' }) : reply.code(503).send({ status: 'starting' });
  app.get('/health', live);
  app.get('/health/live', live);
  app.get('/health/ready', ready);
  app.get('/health/startup', startup);
  app.get('/v2/health/live', live);
  app.get('/v2/health/ready', ready);

  // ---- metadata ----
  type Req = FastifyRequest<{ Params: ModelParams }>;
  app.get('/v2', async (req) => plane.metadata(checkContext(req)));
  const modelMetadata = async (req: Req) => plane.modelMetadata(checkContext(req), req.params.model!, req.params.version);
  app.get('/v2/models/:model', modelMetadata);
  app.get('/v2/models/:model/versions/:version', modelMetadata);
  const modelReady = async (req: Req, reply: FastifyReply) => {
    const ok = await plane.modelReady(checkContext(req), req.params.model!, req.params.version);
    return reply.code(ok ? 200 : 503).send({ name: req.params.model, ready: ok });
  };
  // Triton's model configuration, in the JSON shape its clients read (batch limit, dims).
  const modelConfig = async (req: Req) => encodeModelConfig(await plane.modelMetadata(checkContext(req), req.params.model!, req.params.version));
  app.get('/v2/models/:model/config', modelConfig);
  app.get('/v2/models/:model/versions/:version/config', modelConfig);
  app.get('/v2/models/:model/ready', modelReady);
  app.get('/v2/models/:model/versions/:version/ready', modelReady);

  // ---- statistics extension ----
  const stats = async (req: Req) => ({ model_stats: await plane.modelStatistics(checkContext(req), req.params.model, req.params.version) });
  app.get('/v2/models/stats', stats);
  app.get('/v2/models/:model/stats', stats);
  app.get('/v2/models/:model/versions/:version/stats', stats);

  // ---- repository extension ----
  app.post('/v2/repository/index', async (req) => {
    const body = (req.body ?? {}) as { ready?: unknown };
    return plane.repositoryIndex(checkContext(req), body.ready === true);
  });
  app.post('/v2/repository/models/:model/load', async (req: Req, reply) => {
    await plane.loadModel(checkContext(req), req.params.model!);
    return reply.code(200).send({});
  });
  app.post('/v2/repository/models/:model/unload', async (req: Req, reply) => {
    await plane.unloadModel(checkContext(req), req.params.model!);
    return reply.code(200).send({});
  });

  // ---- inference: bodies are parsed here, not by Fastify, so the binary extension can share the route ----
  // Small JSON bodies are decoded in place (a hand-off would cost more than the decode); large
  // ones in a decoder thread, so that the event loop keeps answering while they are read.
  const offloadBytes = options.jsonOffloadBytes ?? 0;
  const decoders = offloadBytes > 0 ? new JsonDecodePool({ threads: options.jsonDecodeThreads ?? 1, maxQueue: 64, nice: options.workerNice ?? 0 }) : undefined;
  if (decoders) app.addHook('onClose', async () => decoders.close());
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    const asBuffer = (_req: FastifyRequest, body: string | Buffer, done: (error: Error | null, body?: unknown) => void): void => done(null, body);
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, asBuffer);
    // The same parser under the usual types too: Fastify remembers a named type's parser, and
    // without one would parse the Content-Type header again on every request to find '*'.
    scope.addContentTypeParser(['application/json', 'application/octet-stream'], { parseAs: 'buffer' }, asBuffer);

    // A large JSON body of known length starts decoding as its first bytes arrive: its chunks
    // go to the decoder thread (through shared memory) instead of into a buffer Fastify joins.
    // Fastify still counts them, so its length checks and errors stay as they are.
    const decodeArriving = decoders !== undefined && options.jsonDecodeArriving === true;
    const arrivingHook: preParsingHookHandler = (req, _reply, payload, done) => {
      const length = Number(req.headers['content-length']);
      if (
        decoders === undefined ||
        !Number.isSafeInteger(length) ||
        length < offloadBytes ||
        length > options.bodyLimitBytes ||
        req.headers['inference-header-content-length'] !== undefined ||
        !isIdentityEncoding(req.headers['content-encoding']) ||
        req.contextError !== undefined ||
        !decoders.canDecodeArriving
      ) {
        return done(null, payload);
      }
      const body = decoders.arrivingBody(length);
      const counted = divertBody(payload, { write: (chunk) => body.write(chunk), end: () => body.end(), fail: (error) => body.abandon(error) }, { closeFailsParse: false });
      req.arrivingDecode = decoders.decodeArriving(body);
      // Awaited by the route; a request refused before it gets there must not leave a rejection unhandled.
      req.arrivingDecode.catch(() => undefined);
      done(null, counted);
    };

    /** The request a body holds: decoded here, or a promise of it decoded in another thread. */
    const decodeBody = (req: Req): InferenceRequest | Promise<InferenceRequest> => {
      if (req.arrivingDecode !== undefined) return req.arrivingDecode;
      const body = req.binaryBody ?? (req.body as Buffer | undefined);
      if (!body || body.length === 0) throw new InvalidInputError('the request body is empty; expected a JSON inference request');
      const headerLength = req.headers['inference-header-content-length'];
      if (headerLength !== undefined) {
        const n = Number(headerLength);
        if (!Number.isInteger(n) || n < 0 || n > body.length) {
          throw new InvalidInputError(`Inference-Header-Content-Length is ${JSON.stringify(headerLength)} but the body has ${body.length} bytes`);
        }
        const request = binaryCodec.decode(body, n);
        if (req.binaryBody !== undefined) lendSoleTensor(request, req.binaryBody);
        return request;
      }
      if (decoders !== undefined && body.length >= offloadBytes) return decoders.decode(body);
      return decodeInferRequest(parseJsonBody(body));
    };
    /** Sends a failure through the error handler, as a thrown one would be. */
    const fail = (reply: FastifyReply, error: unknown): void => {
      reply.send(error instanceof Error ? error : toInferdError(error));
    };
    /** Writes the answer of an inference: JSON, or the binary extension when the request asked for it. */
    const answered = (state: Answering, response: InferenceResponse): void => {
      const reply = state.reply;
      try {
        finalHeaders(reply.request, reply);
        // Binary outputs are asked for by request or output parameters; without any, JSON.
        const request = state.request;
        const binary = request.outputs === undefined && request.parameters === undefined ? undefined : binaryCodec.encode(response, request);
        if (binary) {
          reply
            .header('inference-header-content-length', String(binary.headerLength))
            .type('application/octet-stream')
            .send(binary.body);
          return;
        }
        // With its charset, so Fastify need not build the header again.
        reply.type(JSON_TYPE).send(encodeInferResponse(response));
      } catch (error) {
        fail(reply, error);
      }
    };
    const failed = (state: Answering, error: unknown): void => fail(state.reply, error);
    const answer = (reply: FastifyReply, ctx: PipelineContext, request: InferenceRequest): void => {
      plane.inferTo(ctx, request, { reply, request }, answered, failed);
    };
    // Not async, and answering through `reply.send`: a small request then costs one `then` on
    // the main thread instead of an async frame, its await and Fastify's wrapping of the promise.
    const infer = (req: Req, reply: FastifyReply): void => {
      let ctx: PipelineContext;
      let decoded: InferenceRequest | Promise<InferenceRequest>;
      try {
        ctx = checkContext(req);
        decoded = decodeBody(req);
      } catch (error) {
        return fail(reply, error);
      }
      if (decoded instanceof Promise) {
        decoded.then(
          (request) => answer(reply, ctx, request),
          (error: unknown) => fail(reply, error),
        );
        return;
      }
      answer(reply, ctx, decoded);
    };
    // Large binary bodies go into memory of their own; the arriving-JSON hook only when on.
    const binaryHook = binaryBodyHook(options.bodyLimitBytes);
    // `ownHeaders`: the answer (`answered`) or the error handler sets the final headers, no onSend hook.
    const inferOptions = { preParsing: decodeArriving ? [binaryHook, arrivingHook] : [binaryHook], config: { ownHeaders: true } };
    scope.post<{ Params: ModelParams }>('/v2/models/:model/infer', inferOptions, infer);
    scope.post<{ Params: ModelParams }>('/v2/models/:model/versions/:version/infer', inferOptions, infer);

    // KServe V1 / TF-Serving: /v1/models/<model>:predict (or .../versions/<v>:predict)
    const predict = async (req: Req, reply: FastifyReply) => {
      const ctx = checkContext(req);
      const target = req.params.target!;
      if (!target.endsWith(':predict')) throw new InvalidInputError(`unknown V1 verb in '${target}'; only ':predict' is supported`);
      const head = target.slice(0, -':predict'.length);
      if (req.params.model === undefined) ctx.model = head;
      else ctx.version = head;
      const body = req.body as Buffer | undefined;
      if (!body || body.length === 0) throw new InvalidInputError('the request body is empty; expected {"instances": [...]}');
      const instances = parseV1Body(parseV1JsonBody(body));
      ctx.decode = (inputs) => decodeV1Instances(instances, inputs);
      const response = await plane.infer(ctx, { inputs: [] });
      return reply.type('application/json').send(encodeV1Predictions(response.outputs));
    };
    scope.post('/v1/models/:target', predict);
    scope.post('/v1/models/:model/versions/:target', predict);
  });

  for (const plugin of options.plugins ?? []) await plugin(app, plane);

  Object.defineProperty(app, 'httpInFlight', { get: () => httpInFlight });
  return app;
}

export function httpInFlightOf(app: FastifyInstance): number {
  return (app as unknown as { httpInFlight: number }).httpInFlight;
}

/** Where genReqId leaves the correlation id it read (and its header reader), for onRequest. */
const CORRELATION = Symbol('correlation');
type Seen = { correlation: { id: string; key: string }; header: HeaderReader };
/** The request's cancellation, kept on its response for the 'close' listener. */
const CANCELLATION = Symbol('cancellation');

/** What an inference's answer is written with. */
interface Answering {
  reply: FastifyReply;
  request: InferenceRequest;
}
const JSON_TYPE = 'application/json; charset=utf-8';

/** Longest path segment (a model name, a version) the router takes. */
const MAX_PARAM_LENGTH = 256;

function maxHeaderSize(): number {
  return httpMaxHeaderSize;
}

