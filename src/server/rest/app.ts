/**
 * The REST front door: the Open Inference Protocol (KServe V2), KServe V1 / TF-Serving style
 * `:predict`, three-tier health, statistics and the repository API, on Fastify. Routes decode
 * the wire format, call the data plane, and encode the answer; nothing else.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { InvalidInputError } from '../../core/errors.js';
import type { DataPlane } from '../../core/dataplane.js';
import type { InferenceRequest, InferenceResponse, RequestContext, Tensor } from '../../core/types.js';
import { toValues } from '../../core/tensor.js';
import { encodeModelConfig } from '../grpc/codec.js';
import { decodeInferRequest, decodeTensor, encodeInferResponse } from './json-codec.js';
import { toHttpError } from './errors.js';

export interface RestOptions {
  bodyLimitBytes: number;
  keepAliveTimeoutMs: number;
  requestTimeoutMs: number;
  logger: Logger;
  accessLog: boolean;
  /** Binary tensor extension: splits a body into its JSON header and binary section. */
  binary?: BinaryCodec;
  /** Extra routes (metrics, admin) registered by other modules. */
  plugins?: Array<(app: FastifyInstance) => void | Promise<void>>;
  /** Extracts the caller's W3C trace context into each request's context (tracing on). */
  traceContext?: (headers: Record<string, string | string[] | undefined>) => unknown;
  /** Called when each request ends (metrics). */
  onResponse?: (info: { route: string; status: number; durationSeconds: number }) => void;
}

/** The binary data extension, provided by src/server/binary. */
export interface BinaryCodec {
  decode(body: Buffer, headerLength: number): InferenceRequest;
  encode(response: InferenceResponse, request: InferenceRequest): { body: Buffer; headerLength: number } | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The inference context of this request, for the access log. */
    inferContext: RequestContext | undefined;
    inferModel: string | undefined;
    /** Set when the client goes away before its answer is written. */
    cancellation: { aborted: boolean };
  }
}

/** Probes and scrapes: answered while draining, left out of the access log. */
const PROBE_ROUTES = new Set(['/metrics', '/health', '/health/live', '/health/ready', '/health/startup', '/v2/health/live', '/v2/health/ready']);

function requestIdOf(headers: Record<string, string | string[] | undefined>): string {
  const direct = headers['x-request-id'] ?? headers['x-correlation-id'];
  if (typeof direct === 'string' && direct.length > 0 && direct.length <= 200) return direct;
  const traceparent = headers.traceparent;
  if (typeof traceparent === 'string') {
    const traceId = traceparent.split('-')[1];
    if (traceId && /^[0-9a-f]{32}$/.test(traceId)) return traceId;
  }
  return randomUUID();
}

export async function createRestApp(plane: DataPlane, options: RestOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // One access line per request is written in onResponse instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    genReqId: (req) => requestIdOf(req.headers),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.decorateRequest('inferContext', undefined);
  app.decorateRequest('inferModel', undefined);
  app.decorateRequest('cancellation', null as unknown as { aborted: boolean });
  let httpInFlight = 0;

  app.addHook('onRequest', async (request, reply) => {
    // 'close' fires whether the response finished or the client went away mid-request, so the
    // count cannot leak (onResponse does not run for aborted requests).
    httpInFlight++;
    const cancellation = { aborted: false };
    request.cancellation = cancellation;
    // One listener per request: the count, and queued work dropped when the client has gone.
    reply.raw.once('close', () => {
      httpInFlight--;
      if (!reply.raw.writableFinished) cancellation.aborted = true;
    });
    reply.header('x-request-id', request.id);
    if (plane.isDraining && !PROBE_ROUTES.has(request.routeOptions.url ?? '')) {
      reply.header('connection', 'close');
      reply.header('retry-after', '5');
      return reply.code(503).send({ error: 'the server is shutting down; retry on another replica' });
    }
    return undefined;
  });

  // While draining, every answer closes its connection so keep-alive clients move elsewhere
  // and the listener can close without waiting for idle sockets to time out.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (plane.isDraining) reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const durationSeconds = reply.elapsedTime / 1000;
    options.onResponse?.({ route, status: reply.statusCode, durationSeconds });
    if (options.accessLog && !PROBE_ROUTES.has(route)) {
      const outcome = request.inferContext?.outcome;
      request.log.info(
        {
          method: request.method,
          route,
          model: outcome?.model ?? request.inferModel,
          version: outcome?.version,
          status: reply.statusCode,
          latencyMs: round3(reply.elapsedTime),
          ...(outcome ? { batchSize: outcome.batchRows, queueMs: round3(outcome.queueMs), computeMs: round3(outcome.computeMs) } : {}),
        },
        'request',
      );
    }
  });

  app.setErrorHandler((error, request, reply) => {
    const e = toHttpError(error);
    if (e.status >= 500 && e.status !== 503 && e.status !== 504) request.log.error({ reqId: request.id, err: error }, 'request failed');
    if (e.retryAfterSeconds !== undefined) reply.header('retry-after', String(e.retryAfterSeconds));
    void reply.code(e.status).send({ error: e.message });
  });

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

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route for ${request.method} ${request.url}` });
  });

  // ---- health: liveness never touches models; readiness and startup report the data plane ----
  const live = async (_req: FastifyRequest, reply: FastifyReply) => reply.code(200).send({ status: 'alive' });
  const ready = async (_req: FastifyRequest, reply: FastifyReply) => {
    if (plane.ready()) return reply.code(200).send({ status: 'ready' });
    const failures = plane.models.failures();
    return reply.code(503).send({
      status: plane.isDraining ? 'draining' : plane.isStarted ? 'not ready' : 'starting',
      ...(failures.length > 0 ? { failures } : {}),
    });
  };
  const startup = async (_req: FastifyRequest, reply: FastifyReply) =>
    plane.isStarted ? reply.code(200).send({ status: 'started' }) : reply.code(503).send({ status: 'starting' });
  app.get('/health', live);
  app.get('/health/live', live);
  app.get('/health/ready', ready);
  app.get('/health/startup', startup);
  app.get('/v2/health/live', live);
  app.get('/v2/health/ready', ready);

  // ---- metadata ----
  app.get('/v2', async () => plane.metadata());
  type ModelParams = { model: string; version?: string };
  const modelMetadata = async (req: FastifyRequest<{ Params: ModelParams }>) => plane.modelMetadata(req.params.model, req.params.version);
  app.get('/v2/models/:model', modelMetadata);
  app.get('/v2/models/:model/versions/:version', modelMetadata);
  const modelReady = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const ok = plane.modelReady(req.params.model, req.params.version);
    return reply.code(ok ? 200 : 503).send({ name: req.params.model, ready: ok });
  };
  // Triton's model configuration, in the JSON shape its clients read (batch limit, dims).
  const modelConfig = async (req: FastifyRequest<{ Params: ModelParams }>) => encodeModelConfig(plane.modelMetadata(req.params.model, req.params.version));
  app.get('/v2/models/:model/config', modelConfig);
  app.get('/v2/models/:model/versions/:version/config', modelConfig);
  app.get('/v2/models/:model/ready', modelReady);
  app.get('/v2/models/:model/versions/:version/ready', modelReady);

  // ---- statistics extension ----
  const stats = async (req: FastifyRequest<{ Params: Partial<ModelParams> }>) => ({
    model_stats: plane.modelStatistics(req.params.model, req.params.version),
  });
  app.get('/v2/models/stats', stats);
  app.get('/v2/models/:model/stats', stats);
  app.get('/v2/models/:model/versions/:version/stats', stats);

  // ---- repository extension ----
  app.post('/v2/repository/index', async (req) => {
    const body = (req.body ?? {}) as { ready?: unknown };
    return plane.repositoryIndex(body.ready === true);
  });
  app.post('/v2/repository/models/:model/load', async (req: FastifyRequest<{ Params: ModelParams }>, reply) => {
    await plane.loadModel(req.params.model);
    return reply.code(200).send({});
  });
  app.post('/v2/repository/models/:model/unload', async (req: FastifyRequest<{ Params: ModelParams }>, reply) => {
    await plane.unloadModel(req.params.model);
    return reply.code(200).send({});
  });

  // ---- inference: bodies are parsed here, not by Fastify, so the binary extension can share the route ----
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    const context = (req: FastifyRequest): RequestContext => {
      const ctx: RequestContext = { requestId: req.id, protocol: 'rest', signal: req.cancellation };
      if (options.traceContext) ctx.trace = options.traceContext(req.headers);
      req.inferContext = ctx;
      return ctx;
    };

    const infer = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
      const { model, version } = req.params;
      req.inferModel = model;
      const body = req.body as Buffer | undefined;
      if (!body || body.length === 0) throw new InvalidInputError('the request body is empty; expected a JSON inference request');
      const headerLength = req.headers['inference-header-content-length'];
      let request: InferenceRequest;
      if (headerLength !== undefined) {
        if (!options.binary) throw new InvalidInputError('the binary tensor extension is not enabled on this server');
        const n = Number(headerLength);
        if (!Number.isInteger(n) || n < 0 || n > body.length) {
          throw new InvalidInputError(`Inference-Header-Content-Length is ${JSON.stringify(headerLength)} but the body has ${body.length} bytes`);
        }
        request = options.binary.decode(body, n);
      } else {
        request = decodeInferRequest(parseJson(body));
      }
      const response = await plane.infer(model, version, request, context(req));
      const binary = options.binary?.encode(response, request);
      if (binary) {
        return reply
          .header('inference-header-content-length', String(binary.headerLength))
          .type('application/octet-stream')
          .send(binary.body);
      }
      return reply.type('application/json').send(encodeInferResponse(response));
    };
    scope.post('/v2/models/:model/infer', infer);
    scope.post('/v2/models/:model/versions/:version/infer', infer);

    // KServe V1 / TF-Serving: {"instances": [...]} → {"predictions": [...]}
    const predict = async (req: FastifyRequest<{ Params: { target: string; model?: string } }>, reply: FastifyReply) => {
      // The route is /v1/models/<model>:predict (or .../versions/<v>:predict); split the verb off.
      const target = req.params.target;
      if (!target.endsWith(':predict')) throw new InvalidInputError(`unknown V1 verb in '${target}'; only ':predict' is supported`);
      const head = target.slice(0, -':predict'.length);
      const model = req.params.model ?? head;
      const version = req.params.model === undefined ? undefined : head;
      req.inferModel = model;
      const body = req.body as Buffer | undefined;
      if (!body || body.length === 0) throw new InvalidInputError('the request body is empty; expected {"instances": [...]}');
      const meta = plane.modelMetadata(model, version);
      const request = decodeV1Request(parseJson(body), meta.inputs);
      const response = await plane.infer(model, version, request, context(req));
      return reply.type('application/json').send(JSON.stringify({ predictions: v1Predictions(response.outputs) }));
    };
    scope.post('/v1/models/:target', predict);
    scope.post('/v1/models/:model/versions/:target', predict);
  });

  for (const plugin of options.plugins ?? []) await plugin(app);

  Object.defineProperty(app, 'httpInFlight', { get: () => httpInFlight });
  return app;
}

export function httpInFlightOf(app: FastifyInstance): number {
  return (app as unknown as { httpInFlight: number }).httpInFlight;
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new InvalidInputError(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

// ---- KServe V1 ----

function decodeV1Request(body: unknown, inputs: ReadonlyArray<{ name: string; datatype: Tensor['datatype']; shape: number[] }>): InferenceRequest {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { instances?: unknown }).instances)) {
    throw new InvalidInputError('the request body must be {"instances": [...]}');
  }
  const instances = (body as { instances: unknown[] }).instances;
  if (instances.length === 0) throw new InvalidInputError("'instances' is empty: nothing to predict");
  const named = instances.every((i) => typeof i === 'object' && i !== null && !Array.isArray(i));
  if (!named && inputs.length !== 1) {
    throw new InvalidInputError(`this model takes ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}): each instance must be an object naming them`);
  }
  const tensors = inputs.map((meta, position) => {
    const rows = named ? instances.map((i) => (i as Record<string, unknown>)[meta.name]) : instances;
    if (rows.some((r) => r === undefined)) throw new InvalidInputError(`an instance is missing input '${meta.name}'`);
    const rowShape = meta.shape.slice(1).map((d, axis) => (d >= 0 ? d : inferDim(rows[0], axis)));
    return decodeTensor({ name: meta.name, datatype: meta.datatype, shape: [rows.length, ...rowShape], data: rows }, position);
  });
  return { inputs: tensors };
}

function inferDim(row: unknown, axis: number): number {
  let v: unknown = row;
  for (let i = 0; i < axis; i++) v = Array.isArray(v) ? v[0] : undefined;
  if (!Array.isArray(v)) throw new InvalidInputError('instances do not have the shape the model expects');
  return v.length;
}

function nest(values: unknown[], dims: number[]): unknown {
  if (dims.length === 0) return values[0];
  if (dims.length === 1) return values;
  const size = dims.slice(1).reduce((a, b) => a * b, 1);
  const out: unknown[] = [];
  for (let i = 0; i < dims[0]!; i++) out.push(nest(values.slice(i * size, (i + 1) * size), dims.slice(1)));
  return out;
}

function v1Predictions(outputs: Tensor[]): unknown[] {
  const rows = outputs[0]?.shape[0] ?? 0;
  const perOutput = outputs.map((t) => {
    const values = toValues(t.datatype, t.data);
    const inner = t.shape.slice(1);
    const size = inner.reduce((a, b) => a * b, 1);
    return { name: t.name, rows: Array.from({ length: rows }, (_, r) => nest(values.slice(r * size, (r + 1) * size), inner)) };
  });
  if (perOutput.length === 1) return perOutput[0]!.rows;
  return Array.from({ length: rows }, (_, r) => Object.fromEntries(perOutput.map((o) => [o.name, o.rows[r]])));
}

