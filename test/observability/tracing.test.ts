import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { describe, expect, test } from 'vitest';
import { extractContext, injectContext, setupTracing } from '../../src/observability/tracing.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`;

describe('tracing', () => {
  test("a span started under an extracted context carries the caller's trace id and parent", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = setupTracing({ serviceName: 'inferd-test', serviceVersion: '0.1.0', exporter, register: false });
    expect(tracing.enabled).toBe(true);

    const parent = extractContext({ traceparent: TRACEPARENT, tracestate: 'vendor=abc' });
    const span = tracing.tracer.startSpan('infer breast_cancer', { kind: SpanKind.SERVER }, parent);
    const outgoing = injectContext({}, trace.setSpan(parent, span));
    span.end();
    await tracing.forceFlush();

    const [finished] = exporter.getFinishedSpans();
    expect(finished?.spanContext().traceId).toBe(TRACE_ID);
    expect(finished?.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
    expect(finished?.resource.attributes['service.name']).toBe('inferd-test');
    expect(finished?.resource.attributes['service.version']).toBe('0.1.0');
    // Outgoing calls continue the same trace, from this span, with the caller's tracestate.
    expect(outgoing['traceparent']).toBe(`00-${TRACE_ID}-${finished?.spanContext().spanId}-01`);
    expect(outgoing['tracestate']).toBe('vendor=abc');
    await tracing.shutdown();
  });

  test('registered globally, active spans follow async calls', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = setupTracing({ serviceName: 'inferd-test', exporter });
    const tracer = trace.getTracer('test');
    await context.with(extractContext({ traceparent: TRACEPARENT }), () =>
      tracer.startActiveSpan('request', async (outer) => {
        await new Promise((done) => setTimeout(done, 5));
        tracer.startSpan('runtime.run').end();
        outer.end();
      }),
    );
    await tracing.forceFlush();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name).sort()).toEqual(['request', 'runtime.run']);
    const outer = spans.find((s) => s.name === 'request');
    const inner = spans.find((s) => s.name === 'runtime.run');
    expect(inner?.spanContext().traceId).toBe(TRACE_ID);
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
    await tracing.shutdown();
    // Shutdown removed the globals: tracers are no-ops again.
    expect(trace.getTracer('after').startSpan('x').isRecording()).toBe(false);
  });

  test('off without an endpoint or exporter: spans do not record', () => {
    const tracing = setupTracing({ serviceName: 'inferd-test' });
    expect(tracing.enabled).toBe(false);
    const span = tracing.tracer.startSpan('x', {}, extractContext({ traceparent: TRACEPARENT }));
    expect(span.isRecording()).toBe(false);
  });

  test('exports over OTLP/HTTP to the configured endpoint', async () => {
    const received: Array<{ url: string; contentType: string; body: Buffer }> = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ url: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((done) => collector.listen(0, '127.0.0.1', done));
    const { port } = collector.address() as AddressInfo;
    const tracing = setupTracing({ serviceName: 'inferd-otlp', otlpEndpoint: `http://127.0.0.1:${port}/v1/traces`, register: false });
    tracing.tracer.startSpan('infer', {}, extractContext({ traceparent: TRACEPARENT })).end();
    await tracing.shutdown();
    await new Promise((done) => collector.close(done));

    expect(received).toHaveLength(1);
    expect(received[0]?.url).toBe('/v1/traces');
    const text = received[0]!.body.toString('utf8');
    // JSON or protobuf, the service name and the span name travel as plain text.
    expect(text).toContain('inferd-otlp');
    expect(text).toContain('infer');
  });
});
