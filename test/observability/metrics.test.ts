import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ConfigValidationError, DEFAULT_METRICS_CONFIG, validateMetricsConfig } from '../../src/observability/config.js';
import { Metrics, type TensorView } from '../../src/observability/metrics.js';
import { parseExposition, seriesOf, valueOf } from './exposition.js';

const modelsDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'models');

interface GoldenTensor {
  shape: number[];
  datatype: string;
  data: number[];
}

function golden(model: string): Record<string, GoldenTensor> {
  const file = JSON.parse(readFileSync(resolve(modelsDir, model, 'golden.json'), 'utf8')) as { outputs: Record<string, GoldenTensor> };
  return file.outputs;
}

function fp32(name: string, shape: number[], data: number[]): TensorView {
  return { name, datatype: 'FP32', shape, data: Float32Array.from(data) };
}

async function lines(metrics: Metrics) {
  return parseExposition(await metrics.render());
}

describe('Metrics', () => {
  test('renders inference histograms with cumulative buckets, sum and count', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const v = metrics.forVersion('iris', '1');
    v.inference('rest', 0.003, 'success');
    v.inference('rest', 0.2, 'success');
    v.inference('rest', 0.7, 'error');
    v.inference('rest', 20, 'error');
    v.inference('grpc', 0.004, 'success');

    expect(metrics.contentType).toContain('text/plain');
    const out = await lines(metrics);
    const rest = { model: 'iris', version: '1', protocol: 'rest' };
    const bucket = (le: string) => valueOf(out, 'inferd_inference_duration_seconds_bucket', { ...rest, le });
    expect(bucket('0.005')).toBe(1);
    expect(bucket('0.1')).toBe(1);
    expect(bucket('0.25')).toBe(2);
    expect(bucket('0.5')).toBe(2);
    expect(bucket('1')).toBe(3);
    expect(bucket('10')).toBe(3);
    expect(bucket('+Inf')).toBe(4);
    expect(seriesOf(out, 'inferd_inference_duration_seconds_bucket', rest)).toHaveLength(12);
    expect(valueOf(out, 'inferd_inference_duration_seconds_count', rest)).toBe(4);
    expect(valueOf(out, 'inferd_inference_duration_seconds_sum', rest)).toBeCloseTo(20.903, 9);
    expect(valueOf(out, 'inferd_inference_requests_total', { ...rest, result: 'success' })).toBe(2);
    expect(valueOf(out, 'inferd_inference_requests_total', { ...rest, result: 'error' })).toBe(2);
    expect(valueOf(out, 'inferd_inference_requests_total', { model: 'iris', protocol: 'grpc', result: 'success' })).toBe(1);
    // Non-finite observations are dropped rather than poisoning _sum.
    v.inference('rest', Number.NaN, 'success');
    expect(valueOf(await lines(metrics), 'inferd_inference_duration_seconds_sum', rest)).toBeCloseTo(20.903, 9);
  });

  test('records queue, compute, batch size, failures, in-flight and queue size', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const v = metrics.forVersion('digits', '2');
    v.queueTime(0.002);
    v.computeTime(0.03);
    v.batchSize(3);
    v.batchSize(64);
    v.failure('timeout');
    v.failure('timeout');
    metrics.recordFailure('digits', '2', 'invalid_input');
    v.inFlight(1);
    metrics.addInFlight('digits', 2);
    v.inFlight(-1);
    v.queueSize(7);
    metrics.observeRequest('rest', '/v2/models/:model/infer', 200, 0.01);
    metrics.observeRequest('rest', '/v2/models/:model/infer', 503, 0.02);

    const out = await lines(metrics);
    const mv = { model: 'digits', version: '2' };
    expect(valueOf(out, 'inferd_inference_queue_duration_seconds_bucket', { ...mv, le: '0.005' })).toBe(1);
    expect(valueOf(out, 'inferd_inference_compute_duration_seconds_bucket', { ...mv, le: '0.025' })).toBe(0);
    expect(valueOf(out, 'inferd_inference_compute_duration_seconds_bucket', { ...mv, le: '0.05' })).toBe(1);
    expect(valueOf(out, 'inferd_batch_size_bucket', { ...mv, le: '2' })).toBe(0);
    expect(valueOf(out, 'inferd_batch_size_bucket', { ...mv, le: '4' })).toBe(1);
    expect(valueOf(out, 'inferd_batch_size_bucket', { ...mv, le: '64' })).toBe(2);
    expect(valueOf(out, 'inferd_inference_failures_total', { ...mv, reason: 'timeout' })).toBe(2);
    expect(valueOf(out, 'inferd_inference_failures_total', { ...mv, reason: 'invalid_input' })).toBe(1);
    expect(valueOf(out, 'inferd_inference_in_flight', { model: 'digits' })).toBe(2);
    expect(valueOf(out, 'inferd_inference_queue_size', mv)).toBe(7);
    expect(valueOf(out, 'inferd_request_duration_seconds_count', { protocol: 'rest', route: '/v2/models/:model/infer', status_code: '503' })).toBe(1);
    expect(valueOf(out, 'inferd_request_duration_seconds_bucket', { status_code: '200', le: '0.01' })).toBe(1);
  });

  test('registering a version creates its series at zero; removing it drops them', async () => {
    const metrics = new Metrics({ defaultMetrics: false, protocols: ['rest', 'grpc'] });
    const handle = metrics.registerModelVersion('breast_cancer', '1', { platform: 'onnx' });
    let out = await lines(metrics);
    const mv = { model: 'breast_cancer', version: '1' };
    expect(valueOf(out, 'inferd_model_version_info', { ...mv, platform: 'onnx' })).toBe(1);
    for (const protocol of ['rest', 'grpc']) {
      for (const result of ['success', 'error']) expect(valueOf(out, 'inferd_inference_requests_total', { ...mv, protocol, result })).toBe(0);
      expect(valueOf(out, 'inferd_inference_duration_seconds_count', { ...mv, protocol })).toBe(0);
    }
    expect(seriesOf(out, 'inferd_inference_requests_total', { protocol: 'kafka' })).toHaveLength(0);
    expect(valueOf(out, 'inferd_inference_queue_duration_seconds_count', mv)).toBe(0);

    // The handle is the one forVersion() returns, and registering again keeps the counts.
    expect(metrics.forVersion('breast_cancer', '1')).toBe(handle);
    handle.inference('rest', 0.01, 'success');
    metrics.registerModelVersion('breast_cancer', '1', { platform: 'onnx' });
    out = await lines(metrics);
    expect(valueOf(out, 'inferd_inference_requests_total', { ...mv, protocol: 'rest', result: 'success' })).toBe(1);

    metrics.forVersion('breast_cancer', '2').inference('rest', 0.01, 'success');
    metrics.removeModelVersion('breast_cancer', '1');
    out = await lines(metrics);
    expect(out.filter((l) => l.labels['version'] === '1')).toEqual([]);
    expect(valueOf(out, 'inferd_inference_requests_total', { version: '2', result: 'success' })).toBe(1);
  });

  test('disabled metrics register nothing and every record call is a no-op', async () => {
    const metrics = new Metrics({ enabled: false });
    const v = metrics.forVersion('m', '1');
    v.inference('rest', 0.1, 'success');
    v.failure('internal');
    v.predictions([fp32('p', [1, 2], [0.4, 0.6])]);
    metrics.registerModelVersion('m', '1');
    metrics.observeRequest('rest', '/', 200, 0.1);
    metrics.observeInference('m', '1', 'grpc', 0.1, 'error');
    metrics.addInFlight('m', 1);
    expect(metrics.enabled).toBe(false);
    expect(metrics.registry.getMetricsAsArray()).toHaveLength(0);
    expect((await metrics.render()).trim()).toBe('');
  });

  test('default process metrics keep their standard names, event-loop lag included', async () => {
    const metrics = new Metrics();
    const names = new Set((await lines(metrics)).map((l) => l.name));
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(names.has(name), name).toBe(true);
    }
    expect([...names].some((n) => n.startsWith('inferd_process') || n.startsWith('inferd_nodejs'))).toBe(false);
    // Two servers in one process (tests) keep separate registries.
    const other = new Metrics();
    metrics.forVersion('a', '1').inference('rest', 0.1, 'success');
    expect(seriesOf(await lines(other), 'inferd_inference_requests_total')).toHaveLength(0);
  });

  test('buckets are configurable and checked', async () => {
    const metrics = new Metrics({ defaultMetrics: false, latencyBuckets: [0.1, 0.3] });
    metrics.forVersion('m', '1').inference('rest', 0.2, 'success');
    const out = await lines(metrics);
    expect(seriesOf(out, 'inferd_inference_duration_seconds_bucket').map((l) => l.labels['le'])).toEqual(['0.1', '0.3', '+Inf']);
    expect(valueOf(out, 'inferd_inference_duration_seconds_bucket', { le: '0.3' })).toBe(1);
    expect(() => new Metrics({ latencyBuckets: [0.5, 0.1] })).toThrow(/latencyBuckets/);
    expect(() => new Metrics({ lowConfidenceThreshold: 2 })).toThrow(/lowConfidenceThreshold/);
  });

  test('route templates are capped so raw URLs cannot explode cardinality', async () => {
    const metrics = new Metrics({ defaultMetrics: false, maxRoutes: 2 });
    metrics.observeRequest('rest', '/a', 200, 0.01);
    metrics.observeRequest('rest', '/b', 200, 0.01);
    metrics.observeRequest('rest', '/c', 200, 0.01);
    metrics.observeRequest('grpc', 'ModelInfer', 0, 0.01);
    const routes = seriesOf(await lines(metrics), 'inferd_request_duration_seconds_count').map((l) => `${l.labels['protocol']} ${l.labels['route']}`);
    expect(routes.sort()).toEqual(['grpc other', 'rest /a', 'rest /b', 'rest other']);
  });
});

describe('observePredictions', () => {
  test('a probabilities output gives class counts, confidence and low-confidence counts (breast_cancer golden outputs)', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const outputs = golden('breast_cancer');
    const probabilities = outputs['probabilities']!;
    const label = outputs['label']!;
    metrics.observePredictions('breast_cancer', '1', [
      fp32('probabilities', probabilities.shape, probabilities.data),
      { name: 'label', datatype: 'INT64', shape: label.shape, data: BigInt64Array.from(label.data.map(BigInt)) },
    ]);

    const rows = probabilities.shape[0]!;
    const expected = new Map<string, number>();
    let low = 0;
    const confidences: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(Float32Array.from(probabilities.data.slice(r * 2, r * 2 + 2)));
      const max = Math.max(...row);
      const cls = String(row.indexOf(max));
      expected.set(cls, (expected.get(cls) ?? 0) + 1);
      confidences.push(max);
      if (max < 0.7) low++;
      // The model's own label output agrees with the argmax.
      expect(cls).toBe(String(label.data[r]));
    }

    const out = await lines(metrics);
    const mv = { model: 'breast_cancer', version: '1' };
    const counted = seriesOf(out, 'inferd_prediction_class_total', mv);
    // Counted once per row: the label output is not counted a second time.
    expect(counted.reduce((sum, l) => sum + l.value, 0)).toBe(rows);
    for (const [cls, count] of expected) expect(valueOf(out, 'inferd_prediction_class_total', { ...mv, class: cls })).toBe(count);
    expect(valueOf(out, 'inferd_prediction_confidence_count', mv)).toBe(rows);
    expect(valueOf(out, 'inferd_prediction_confidence_bucket', { ...mv, le: '0.7' })).toBe(confidences.filter((c) => c <= 0.7).length);
    expect(valueOf(out, 'inferd_prediction_low_confidence_total', mv)).toBe(low);
    expect(valueOf(out, 'inferd_prediction_confidence_sum', mv)).toBeCloseTo(confidences.reduce((a, b) => a + b, 0), 5);
    expect(seriesOf(out, 'inferd_prediction_value_count')).toHaveLength(0);
  });

  test('ten-class probabilities with class names, a low-confidence threshold and a class cap (digits golden outputs)', async () => {
    const outputs = golden('digits');
    const probabilities = outputs['probabilities']!;
    const names = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    const metrics = new Metrics({ defaultMetrics: false, lowConfidenceThreshold: 0.99, maxClasses: 5 });
    metrics.registerModelVersion('digits', '1', { classNames: names });
    metrics.observePredictions('digits', '1', [fp32('probabilities', probabilities.shape, probabilities.data)]);

    const k = probabilities.shape[1]!;
    const rows = probabilities.shape[0]!;
    const expected = new Map<string, number>();
    let low = 0;
    for (let r = 0; r < rows; r++) {
      const row = Array.from(Float32Array.from(probabilities.data.slice(r * k, (r + 1) * k)));
      const max = Math.max(...row);
      const index = row.indexOf(max);
      const cls = index < 5 ? names[index]! : 'other';
      expected.set(cls, (expected.get(cls) ?? 0) + 1);
      if (max < 0.99) low++;
    }
    const out = await lines(metrics);
    const counted = seriesOf(out, 'inferd_prediction_class_total', { model: 'digits' });
    expect(Object.fromEntries(counted.map((l) => [l.labels['class'], l.value]))).toEqual(Object.fromEntries(expected));
    expect(valueOf(out, 'inferd_prediction_low_confidence_total', { model: 'digits' })).toBe(low);
  });

  test('an integer label output alone gives class counts; out-of-bounds labels count as other', async () => {
    const metrics = new Metrics({ defaultMetrics: false, maxClasses: 3 });
    metrics.observePredictions('m', '1', [{ name: 'output_label', datatype: 'INT32', shape: [6], data: Int32Array.from([0, 2, 2, 7, -1, 1]) }]);
    const out = await lines(metrics);
    const counts = Object.fromEntries(seriesOf(out, 'inferd_prediction_class_total').map((l) => [l.labels['class'], l.value]));
    expect(counts).toEqual({ '0': 1, '1': 1, '2': 2, other: 2 });
    expect(seriesOf(out, 'inferd_prediction_confidence_count')).toHaveLength(0);
  });

  test('a [batch, 1] float output is a regression value, with per-version buckets', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.registerModelVersion('price', '3', { valueBuckets: [100, 200, 400] });
    metrics.observePredictions('price', '3', [fp32('value', [4, 1], [50, 150, 350, 900])]);
    metrics.observePredictions('temp', '1', [{ name: 'y', datatype: 'FP64', shape: [2], data: Float64Array.from([-5, 0.05]) }]);
    const out = await lines(metrics);
    expect(seriesOf(out, 'inferd_prediction_value_bucket', { model: 'price' }).map((l) => [l.labels['le'], l.value])).toEqual([
      ['100', 1],
      ['200', 2],
      ['400', 3],
      ['+Inf', 4],
    ]);
    expect(valueOf(out, 'inferd_prediction_value_sum', { model: 'price' })).toBe(1450);
    expect(valueOf(out, 'inferd_prediction_value_bucket', { model: 'temp', le: '-1' })).toBe(1);
    expect(valueOf(out, 'inferd_prediction_value_bucket', { model: 'temp', le: '0.1' })).toBe(2);
    expect(seriesOf(out, 'inferd_prediction_class_total')).toHaveLength(0);
    expect(() => metrics.registerModelVersion('price', '4', { valueBuckets: [3, 2] })).toThrow(/price 4 valueBuckets/);
  });

  test('logits and embeddings are neither classes nor values', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.observePredictions('mobilenet', '1', [fp32('logits', [2, 3], [2.5, -1, 0.3, 4, 1, -2])]);
    const embedding = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? 0.5 : -0.5));
    metrics.observePredictions('encoder', '1', [fp32('embedding', [2, 4], embedding)]);
    const out = await lines(metrics);
    expect(seriesOf(out, 'inferd_prediction_class_total')).toHaveLength(0);
    expect(seriesOf(out, 'inferd_prediction_value_count')).toHaveLength(0);
    expect(seriesOf(out, 'inferd_prediction_confidence_count')).toHaveLength(0);
  });
});

describe('recordOutOfRange', () => {
  test('counts out-of-range values per feature, as the input range check reports them', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.registerModelVersion('digits', '1');
    metrics.recordOutOfRange('digits', '1', 'pixel', 3);
    metrics.recordOutOfRange('digits', '1', 'pixel');
    metrics.recordOutOfRange('digits', '1', 'token_id', 2);
    const out = await lines(metrics);
    expect(valueOf(out, 'inferd_input_out_of_range_total', { feature: 'pixel' })).toBe(4);
    expect(valueOf(out, 'inferd_input_out_of_range_total', { feature: 'token_id' })).toBe(2);
    expect(seriesOf(out, 'inferd_input_out_of_range_total')).toHaveLength(2);
  });
});

describe('cost on the request path', () => {
  // 3% of a core at 15k requests/s leaves 2 µs per request for all of its metrics.
  const perRequest = (metrics: Metrics, n: number): number => {
    const v = metrics.forVersion('bench', '1');
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const seconds = (i % 1000) / 2000;
      v.inFlight(1);
      v.queueTime(seconds / 10);
      v.computeTime(seconds / 2);
      v.inference('rest', seconds, i % 100 === 0 ? 'error' : 'success');
      v.inFlight(-1);
      metrics.observeRequest('rest', '/v2/models/:model/infer', 200, seconds);
    }
    return Number(process.hrtime.bigint() - start) / n;
  };

  test('recording one request costs well under a microsecond, and nothing when disabled', () => {
    const on = new Metrics({ defaultMetrics: false });
    const off = new Metrics({ enabled: false });
    perRequest(on, 50_000);
    perRequest(off, 50_000);
    const enabledNs = Math.min(perRequest(on, 200_000), perRequest(on, 200_000));
    const disabledNs = Math.min(perRequest(off, 200_000), perRequest(off, 200_000));
    expect(enabledNs).toBeLessThan(1000);
    expect(disabledNs).toBeLessThan(enabledNs);
  });
});

describe('metrics config validation', () => {
  test('defaults with no section; a partial section keeps the other defaults', () => {
    expect(validateMetricsConfig(undefined)).toEqual(DEFAULT_METRICS_CONFIG);
    const config = validateMetricsConfig({ enabled: false, maxClasses: 10 });
    expect(config).toEqual({ ...DEFAULT_METRICS_CONFIG, enabled: false, maxClasses: 10 });
    expect(DEFAULT_METRICS_CONFIG.latencyBuckets).toEqual([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  });

  test('names unknown keys and bad values', () => {
    let error: unknown;
    try {
      validateMetricsConfig({ buckets: [1], latencyBuckets: [], maxClasses: 1.5, protocols: ['rest', 'smtp'] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const issues = (error as ConfigValidationError).issues;
    expect(issues).toEqual([
      'metrics.buckets is not a known key (known: enabled, latencyBuckets, batchSizeBuckets, confidenceBuckets, predictionValueBuckets, lowConfidenceThreshold, maxClasses, maxRoutes, protocols, defaultMetrics, eventLoopResolutionMs)',
      'metrics.latencyBuckets must be a non-empty list of finite numbers in increasing order, each at least 0',
      'metrics.maxClasses must be an integer',
      'metrics.protocols must be a list of rest, grpc, kafka, batch, internal',
    ]);
  });
});
