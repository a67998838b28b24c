/**
 * Observation wraps the whole chain once, for every door: the request-duration histogram, the
 * inference histogram and failure counters (the SLO metrics), the in-flight gauge, one access
 * log line, and the OpenTelemetry spans request → queue → batch → inference. Spans are recorded
 * after the fact from the timings the scheduler measured, so tracing adds nothing to the path
 * of an untraced request.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { GRPC_STATUS, httpStatusOf, toInferdError, type FailureReason } from '../../core/errors.js';
import type { InferenceRequest, InferenceResponse } from '../../core/types.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ControlCall, NextControl, NextInfer, PipelineContext, Policy } from '../types.js';

export interface ObserveOptions {
  metrics?: Metrics;
  tracer?: Tracer;
  logger?: Logger;
  /** One info line per request (probes excepted). */
  accessLog: boolean;
}

/** Failures that are the server's doing count against the error SLO; a caller's mistakes do not. */
const SERVER_SIDE: ReadonlySet<FailureReason> = new Set(['rejected', 'timeout', 'runtime_error', 'unavailable', 'internal']);

/** Probes and scrapes: measured, never access-logged. */
const PROBES = new Set(['server.live', 'server.ready', 'server.startup', 'server.metrics']);

export class ObservePolicy implements Policy {
  readonly name = 'observe';

  constructor(private readonly options: ObserveOptions) {}

  // Not async: one `then` costs fewer allocations per request than an async frame and its await.
  // First in the data plane's chain, this does not run: the plane calls the two hooks below.
  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const started = this.inferenceBegan();
    let answer: Promise<InferenceResponse>;
    try {
      answer = next(ctx, request);
    } catch (error) {
      answer = Promise.reject(error);
    }
    return answer.then(
      (response) => {
        this.inferenceSettled(ctx, started, undefined);
        return response;
      },
      (error: unknown) => {
        this.inferenceSettled(ctx, started, error);
        throw error;
      },
    );
  }

  inferenceBegan(): number {
    return performance.now();
  }

  async control(ctx: PipelineContext, call: ControlCall, next: NextControl): Promise<unknown> {
    const started = performance.now();
    try {
      const result = await next(ctx, call);
      this.requestDone(ctx, performance.now() - started, undefined, call.action);
      return result;
    } catch (error) {
      this.requestDone(ctx, performance.now() - started, error, call.action);
      throw error;
    }
  }

  /** Records a request a door refused before it reached the chain (malformed body, unknown route). */
  rejected(ctx: PipelineContext, error: unknown, started: number): void {
    this.requestDone(ctx, performance.now() - started, error, undefined);
  }

  inferenceSettled(ctx: PipelineContext, started: number, error: unknown): void {
    // One clock read for both histograms and the access log.
    const ms = performance.now() - started;
    const seconds = ms / 1000;
    const metrics = this.options.metrics;
    const served = ctx.served;
    // A model label appears only once a loaded version answered for it: unknown names cannot grow the series count.
    if (metrics && served) {
      if (error === undefined) {
        metrics.observeInference(served.name, served.version, ctx.protocol, seconds, 'success');
      } else {
        const reason = toInferdError(error).reason;
        metrics.recordFailure(served.name, served.version, reason);
        metrics.observeInference(served.name, served.version, ctx.protocol, seconds, SERVER_SIDE.has(reason) ? 'error' : 'success');
      }
    }
    if (this.options.tracer) this.trace(this.options.tracer, ctx, started, error);
    this.requestDone(ctx, ms, error, undefined);
  }

  /** `ms`: how long the request took. */
  private requestDone(ctx: PipelineContext, ms: number, error: unknown, action: string | undefined): void {
    if (ctx.observed) return;
    ctx.observed = true;
    const e = error === undefined ? undefined : toInferdError(error);
    const status = ctx.protocol === 'grpc' ? (e ? GRPC_STATUS[e.code] : 0) : e ? httpStatusOf(e) : 200;
    const route = ctx.route ?? action ?? ctx.door ?? 'unknown';
    this.options.metrics?.observeRequest(ctx.protocol, route, status, ms / 1000);
    const log = this.options.logger;
    if (!log) return;
    if (e && e.code === 'INTERNAL') log.error({ reqId: ctx.requestId, door: ctx.door, route, err: error }, 'request failed');
    if (!this.options.accessLog || (action !== undefined && PROBES.has(action)) || !log.isLevelEnabled('info')) return;
    // Built field by field: this runs for every request.
    const line: Record<string, unknown> = { reqId: ctx.requestId, door: ctx.door, route };
    const outcome = ctx.outcome;
    if (ctx.model !== undefined) line['model'] = outcome?.model ?? ctx.model;
    if (ctx.version !== undefined || outcome) line['version'] = outcome?.version ?? ctx.version;
    if (ctx.variant !== undefined) line['variant'] = ctx.variant;
    if (ctx.identity) line['caller'] = ctx.identity.subject;
    line['status'] = status;
    if (e) line['code'] = e.code;
    line['latencyMs'] = round3(ms);
    if (outcome) {
      line['batchSize'] = outcome.batchRows;
      line['queueMs'] = round3(outcome.queueMs);
      line['computeMs'] = round3(outcome.computeMs);
    }
    log.info(line, 'request');
  }

  private trace(tracer: Tracer, ctx: PipelineContext, started: number, error: unknown): void {
    const origin = performance.timeOrigin;
    const parent = (ctx.trace as Context | undefined) ?? ROOT_CONTEXT;
    const model = ctx.served?.name ?? ctx.model ?? '';
    const version = ctx.served?.version ?? '';
    const span = tracer.startSpan(
      `infer ${model}`,
      {
        kind: SpanKind.SERVER,
        startTime: origin + started,
        attributes: { 'inferd.model': model, 'inferd.version': version, 'inferd.protocol': ctx.protocol, 'inferd.request_id': ctx.requestId },
      },
      parent,
    );
    const end = origin + performance.now();
    const timing = ctx.outcome && ctx.timings;
    if (error === undefined && ctx.outcome && timing) {
      const inner = trace.setSpan(parent, span);
      const queueStart = origin + (timing.queuedAt ?? started);
      const queueEnd = queueStart + ctx.outcome.queueMs;
      tracer.startSpan('queue', { startTime: queueStart }, inner).end(queueEnd);
      const batch = tracer.startSpan('batch', { startTime: queueEnd, attributes: { 'inferd.batch_size': ctx.outcome.batchRows } }, inner);
      const inferStart = queueEnd + timing.inputMs;
      tracer.startSpan('inference', { startTime: inferStart }, trace.setSpan(inner, batch)).end(inferStart + timing.inferMs);
      batch.end(queueEnd + ctx.outcome.computeMs);
    } else if (error !== undefined) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end(end);
  }
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
