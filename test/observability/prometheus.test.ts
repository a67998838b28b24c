/**
 * The metrics, the generated rules and the dashboard queries against a real Prometheus server
 * scraping a real HTTP endpoint.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_LATENCY_BUCKETS, DEFAULT_SLO_CONFIG } from '../../src/observability/config.js';
import { buildDashboard, dashboardQueries } from '../../src/observability/dashboard.js';
import { Metrics } from '../../src/observability/metrics.js';
import { generateRules } from '../../src/observability/rules.js';
import { startPrometheus, type PrometheusServer, type PromSample } from '../support/prometheus.js';

const OBSERVATIONS = 2000;
const ERROR_EVERY = 20;

/** Deterministic log-normal durations: median 80 ms, p95 around 0.4 s, a tail past 1 s. */
function durations(n: number): number[] {
  let state = 12345;
  const uniform = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  return Array.from({ length: n }, () => {
    const normal = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    return 0.08 * Math.exp(normal);
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.ceil(q * sorted.length) - 1]!;
}

/** Index of the histogram bucket a value falls in (the +Inf bucket is the last index). */
function bucketIndex(value: number): number {
  const i = DEFAULT_LATENCY_BUCKETS.findIndex((bound) => value <= bound);
  return i === -1 ? DEFAULT_LATENCY_BUCKETS.length : i;
}

const one = (samples: PromSample[]): number => {
  if (samples.length !== 1) throw new Error(`expected one sample, got ${JSON.stringify(samples)}`);
  return samples[0]!.value;
};

describe('metrics scraped by a real Prometheus', () => {
  const metrics = new Metrics();
  const values = durations(OBSERVATIONS);
  const sorted = [...values].sort((a, b) => a - b);
  const work = mkdtempSync(join(tmpdir(), 'inferd-prom-test-'));
  let server: Server;
  let prometheus: PrometheusServer;

  beforeAll(async () => {
    metrics.registerModelVersion('m', '1', { platform: 'onnx' });
    server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      metrics.render().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as AddressInfo;

    const rulesFile = join(work, 'rules.yml');
    writeFileSync(rulesFile, generateRules({ ...DEFAULT_SLO_CONFIG, evaluationInterval: '1s' }));
    prometheus = await startPrometheus({ scrapeTargets: [`127.0.0.1:${port}`], rulesFile, scrapeIntervalSeconds: 1 });

    // Let Prometheus see the zero-initialised series first, so rate() sees every observation.
    await prometheus.waitFor('inferd_inference_duration_seconds_count{model="m",protocol="rest"}', (s) => s.length === 1 && s[0]!.value === 0);
    const v = metrics.forVersion('m', '1');
    values.forEach((seconds, i) => v.inference('rest', seconds, i % ERROR_EVERY === 0 ? 'error' : 'success'));
    await prometheus.waitFor('sum(inferd_inference_duration_seconds_count{model="m"})', (s) => s.length === 1 && s[0]!.value === OBSERVATIONS);
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await new Promise((done) => server?.close(done));
    rmSync(work, { recursive: true, force: true });
  });

  test('histogram_quantile lands within one bucket of the true p50, p95 and p99', async () => {
    for (const q of [0.5, 0.95, 0.99]) {
      const estimate = one(await prometheus.query(`histogram_quantile(${q}, sum by (le) (rate(inferd_inference_duration_seconds_bucket[1m])))`));
      const truth = quantile(sorted, q);
      expect(Math.abs(bucketIndex(estimate) - bucketIndex(truth)), `q=${q}: estimate ${estimate}, true ${truth}`).toBeLessThanOrEqual(1);
    }
    // The p95 interpolates inside the bucket that holds the true p95.
    const p95 = one(await prometheus.query('histogram_quantile(0.95, sum by (le) (rate(inferd_inference_duration_seconds_bucket[1m])))'));
    expect(bucketIndex(p95)).toBe(bucketIndex(quantile(sorted, 0.95)));
  });

  test('recording rules evaluate to the values of what was observed', async () => {
    const goodHalf = sorted.filter((s) => s <= 0.5).length / OBSERVATIONS;
    const goodOne = sorted.filter((s) => s <= 1).length / OBSERVATIONS;
    const near = (expected: number) => (s: PromSample[]) => s.length === 1 && Math.abs(s[0]!.value - expected) < 1e-9;

    await prometheus.waitFor('inferd:inference_error_ratio:rate5m{model="m",version="1"}', near(1 / ERROR_EVERY));
    await prometheus.waitFor('inferd:inference_error_ratio:rate1h{model="m",version="1"}', near(1 / ERROR_EVERY));
    await prometheus.waitFor('inferd:slo_latency_good_ratio:rate5m{model="m",version="1",threshold="0.5"}', near(goodHalf));
    // The 1 s bound is written le="1": the le matcher of whole numbers must find it.
    await prometheus.waitFor('inferd:slo_latency_good_ratio:rate3d{model="m",version="1",threshold="1"}', near(goodOne));
    await prometheus.waitFor('inferd:slo_availability_good_ratio:avg5m{job="inferd"}', near(1));

    const direct = one(await prometheus.query('histogram_quantile(0.95, sum by (model, version, le) (rate(inferd_inference_duration_seconds_bucket{model="m"}[5m])))'));
    await prometheus.waitFor('inferd:inference_latency_seconds:p95{model="m",version="1"}', near(direct));
    const successRate = one(await prometheus.waitFor('inferd:inference_requests:rate5m{model="m",result="success"}', (s) => s.length === 1 && s[0]!.value > 0));
    const errorRate = one(await prometheus.query('inferd:inference_requests:rate5m{model="m",result="error"}'));
    expect(errorRate / (errorRate + successRate)).toBeCloseTo(1 / ERROR_EVERY, 9);
  });

  test('every rule is healthy, and the 5% error burst pages while latency within budget does not', async () => {
    await prometheus.waitFor('count(ALERTS{alertname="InferdErrorBudgetBurnFast",alertstate="firing",model="m"})', (s) => s.length === 1 && s[0]!.value === 1);
    const statuses = await prometheus.rules();
    expect(statuses.length).toBe(40); // 36 SLO rules and 4 drift alerts
    expect(statuses.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);
    // 5% errors burn the 0.1% budget 50 times too fast: both pages and the ticket fire.
    const names = (await prometheus.query('ALERTS{alertstate="firing"}')).map((s) => s.metric['alertname']);
    expect(names).toEqual(expect.arrayContaining(['InferdErrorBudgetBurnFast', 'InferdErrorBudgetBurnSlow', 'InferdErrorBudgetBurnTicket']));
    // Under 5% of these durations exceed 0.5 s and under 1% exceed 1 s: no latency budget burns.
    expect(sorted.filter((s) => s > 0.5).length / OBSERVATIONS).toBeLessThan(0.05);
    expect(sorted.filter((s) => s > 1).length / OBSERVATIONS).toBeLessThan(0.01);
    expect(names.filter((n) => n?.startsWith('InferdLatency') || n?.startsWith('InferdAvailability'))).toEqual([]);
  });

  test('every dashboard query is valid PromQL, and the core panels show data', async () => {
    const queries = dashboardQueries(buildDashboard());
    expect(queries.length).toBeGreaterThan(20);
    const withData: string[] = [];
    for (const { panel, expr } of queries) {
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$model', '.*').replaceAll('$version', '.*');
      const samples = await prometheus.query(promql).catch((error: unknown) => {
        throw new Error(`panel "${panel}": ${String(error)}\n${promql}`);
      });
      if (samples.length > 0) withData.push(panel);
    }
    for (const panel of ['Inference rate', 'Error ratio', 'Inference latency p50 / p95 / p99', 'Event-loop lag', 'CPU and memory', 'Model versions serving']) {
      expect(withData).toContain(panel);
    }
  });
});
