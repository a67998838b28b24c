/**
 * OpenTelemetry tracing: a tracer provider that exports over OTLP/HTTP when an endpoint is
 * configured (off otherwise), W3C trace-context propagation helpers, and correlation ids.
 */
import {
  ROOT_CONTEXT,
  ProxyTracerProvider,
  context as contextApi,
  propagation,
  trace,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

export interface TracingOptions {
  serviceName: string;
  serviceVersion?: string;
  /** OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. */
  otlpEndpoint?: string;
  /** Extra OTLP headers (an API key of a hosted collector, say). */
  otlpHeaders?: Record<string, string>;
  /** Any other exporter (tests use InMemorySpanExporter); wins over otlpEndpoint. */
  exporter?: SpanExporter;
  /**
   * Installs the provider, the W3C propagator and an AsyncLocalStorage context manager as the
   * process-wide OpenTelemetry globals, so that active spans follow async calls. Default true.
   */
  register?: boolean;
}

export interface Tracing {
  /** False when neither an endpoint nor an exporter is configured: spans are no-ops. */
  readonly enabled: boolean;
  readonly provider: TracerProvider;
  readonly tracer: Tracer;
  /** Exports the spans still buffered. */
  forceFlush(): Promise<void>;
  /** Flushes, stops exporting and removes the globals this call installed. */
  shutdown(): Promise<void>;
}

const propagator = new W3CTraceContextPropagator();

/** Header carriers as Node.js and Fastify give them: lower-case names, repeated headers as arrays. */
export type HeaderCarrier = Readonly<Record<string, string | string[] | undefined>>;

const headerGetter: TextMapGetter<HeaderCarrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key] ?? carrier[key.toLowerCase()],
};

const headerSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

export function setupTracing(options: TracingOptions): Tracing {
  const exporter = options.exporter ?? (options.otlpEndpoint !== undefined ? otlpExporter(options) : undefined);
  if (exporter === undefined) {
    // The API's proxy without a delegate hands out no-op tracers: tracing off costs nothing.
    const provider = new ProxyTracerProvider();
    return {
      enabled: false,
      provider,
      tracer: provider.getTracer(options.serviceName),
      forceFlush: async () => {},
      shutdown: async () => {},
    };
  }

  const attributes: Record<string, string> = { [ATTR_SERVICE_NAME]: options.serviceName };
  if (options.serviceVersion !== undefined) attributes[ATTR_SERVICE_VERSION] = options.serviceVersion;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes(attributes),
    // Batching keeps export I/O off the request path.
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const register = options.register ?? true;
  if (register) provider.register({ propagator });

  return {
    enabled: true,
    provider,
    tracer: provider.getTracer(options.serviceName, options.serviceVersion),
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      await provider.shutdown();
      if (register) {
        trace.disable();
        contextApi.disable();
        propagation.disable();
      }
    },
  };
}

function otlpExporter(options: TracingOptions): SpanExporter {
  return new OTLPTraceExporter({ url: options.otlpEndpoint, ...(options.otlpHeaders === undefined ? {} : { headers: options.otlpHeaders }) });
}

/** The caller's trace context from `traceparent`/`tracestate`, on top of `base` (the root by default). */
export function extractContext(headers: HeaderCarrier, base: Context = ROOT_CONTEXT): Context {
  return propagator.extract(base, headers, headerGetter);
}

/** The caller's trace context, read through a header reader (any door's headers or metadata). */
export function extractContextFrom(header: (name: string) => string | undefined, base: Context = ROOT_CONTEXT): Context {
  const carrier: Record<string, string> = {};
  const parent = header('traceparent');
  if (parent === undefined) return base;
  carrier['traceparent'] = parent;
  const state = header('tracestate');
  if (state !== undefined) carrier['tracestate'] = state;
  return propagator.extract(base, carrier, headerGetter);
}

/** Writes `traceparent` (and `tracestate`) of the context's span into carrier, for outgoing calls. */
export function injectContext(carrier: Record<string, string> = {}, ctx: Context = contextApi.active()): Record<string, string> {
  propagator.inject(ctx, carrier, headerSetter);
  return carrier;
}

