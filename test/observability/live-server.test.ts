// Observability of a live server: Prometheus scraping inferd's histograms (quantiles within a
// bucket of what the client measured, recording rules evaluating), traces exported over OTLP
// with the caller's trace id, and the per-request access log line.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { generateRules } from '../../src/observability/rules.js';
import { InferdServer } from '../../src/server/index.js';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { EXAMPLES } from '../support/paths.js';
import { startPrometheus } from '../support/prometheus.js';
import { getJson, makeRepository, postJson, startInProcess } from '../support/server.js';

const SLEEPER = {
  config: `runtime: js
max_batch_size: 0
instances: 4
inputs: [{ name: ms, datatype: INT32, shape: [1] }]
outputs: [{ name: ms, datatype: INT32, shape: [1] }]
warmup: []
`,
  files: { '1/model.mjs': 'export async function predict({ ms }) { await new Promise((r) => setTimeout(r, ms.data[0])); return [ms]; }' },
};

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const bucketOf = (seconds: number) => BUCKETS.findIndex((b) => seconds <= b);

describe('Prometheus scraping a live inferd', () => {
  it('histogram_quantile over inferd_inference_duration_seconds matches measured latencies within one bucket; rules evaluate', async () => {
    const repo = await makeRepository({ sleeper: SLEEPER });
    const { server, url } = await startInProcess(repo);
    const dir = await mkdtemp(join(tmpdir(), 'inferd-rules-'));
    const rulesFile = join(dir, 'rules.yml');
    await writeFile(rulesFile, generateRules(server.config.slo, server.config.metrics.latencyBuckets));
    const prometheus = await startPrometheus({ scrapeTargets: [`${url}/metrics`], rulesFile });
    try {
      await prometheus.waitFor('inferd_inference_duration_seconds_count{model="sleeper",protocol="rest"}', (s) => s.length === 1, 30_000);
      // 90 fast and 10 slow requests: the true p95 is a slow one.
      const plan = [...Array(90).fill(30), ...Array(10).fill(300)].sort(() => Math.random() - 0.5);
      const measured: number[] = [];
      const worker = async () => {
        for (let ms = plan.pop(); ms !== undefined; ms = plan.pop()) {
          const t = performance.now();
          const r = await postJson(`${url}/v2/models/sleeper/infer`, { inputs: [{ name: 'ms', datatype: 'INT32', shape: [1], data: [ms] }] });
          measured.push((performance.now() - t) / 1000);
          expect(r.status).toBe(200);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      measured.sort((a, b) => a - b);
      const trueP95 = measured[Math.ceil(0.95 * measured.length) - 1]!;
      await prometheus.waitFor('sum(inferd_inference_duration_seconds_count{model="sleeper"})', (s) => s[0]?.value === 100, 30_000);
      const [estimate] = await prometheus.waitFor(
        'histogram_quantile(0.95, sum by (le) (rate(inferd_inference_duration_seconds_bucket{model="sleeper"}[1m])))',
        (s) => s.length === 1 && Number.isFinite(s[0]!.value),
        30_000,
      );
      expect(Math.abs(bucketOf(estimate!.value) - bucketOf(trueP95))).toBeLessThanOrEqual(1);
      // Recording rules over inferd's own series evaluate to the values the traffic implies.
      const [errors] = await prometheus.waitFor('inferd:inference_error_ratio:rate5m{model="sleeper",version="1"}', (s) => s.length === 1, 30_000);
      expect(errors!.value).toBe(0);
      const [good] = await prometheus.waitFor('inferd:slo_latency_good_ratio:rate5m{model="sleeper",version="1",threshold="0.5"}', (s) => s.length === 1, 30_000);
      expect(good!.value).toBeCloseTo(1, 5);
      const [p95] = await prometheus.waitFor('inferd:inference_latency_seconds:p95{model="sleeper",version="1"}', (s) => s.length === 1, 30_000);
      expect(Math.abs(bucketOf(p95!.value) - bucketOf(trueP95))).toBeLessThanOrEqual(1);
      const unhealthy = (await prometheus.rules()).filter((r) => r.health === 'err');
      expect(unhealthy).toEqual([]);
    } finally {
      await prometheus.stop();
      await server.shutdown(5000);
    }
  });
});

describe('metrics, traces and logs of one server', () => {
  it('exports ML metrics, OTLP spans with the caller trace id, and one access line per request', async () => {
    const received: Array<{ name: string; traceId: string }> = [];
    const collector = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const doc = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; traceId: string }> }> }> };
        for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) for (const sp of ss.spans) received.push({ name: sp.name, traceId: sp.traceId });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const address = collector.address() as { port: number };
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    const repo = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
    const config = loadConfig({
      env: {},
      overrides: {
        model_repository: repo,
        server: { host: '127.0.0.1', http_port: 0, grpc_port: -1 },
        tracing: { otlp_endpoint: `http://127.0.0.1:${address.port}/v1/traces` },
      },
    });
    const server = await InferdServer.start(config, pino({ level: 'info' }, sink));
    const url = `http://127.0.0.1:${server.httpPort}`;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    try {
      const row = [12.4, 17.68, 81.47, 467.8, 0.1054, 0.1316, 0.07741, 0.02799, 0.1811, 0.07102, 0.1767, 1.46, 2.204, 15.43, 0.01, 0.03295, 0.04861, 0.01167, 0.02187, 0.006005, 12.88, 22.91, 89.61, 515.8, 0.145, 0.2629, 0.2403, 0.0737, 0.2556, 0.09359];
      const r = await postJson(
        `${url}/v2/models/breast_cancer/infer`,
        { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: row }] },
        { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, authorization: 'Bearer secret-token' },
      );
      expect(r.status).toBe(200);
      expect(r.headers.get('x-request-id')).toBe(traceId);
      const bad = await postJson(`${url}/v2/models/breast_cancer/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] });
      expect(bad.status).toBe(400);
      const metrics = (await getJson(`${url}/metrics`)).body as string;
      expect(metrics).toMatch(/inferd_inference_requests_total\{model="breast_cancer",version="1",protocol="rest",result="success"\} 2/);
      expect(metrics).toMatch(/inferd_inference_failures_total\{model="breast_cancer",version="1",reason="invalid_input"\} 1/);
      expect(metrics).toMatch(/inferd_prediction_class_total\{model="breast_cancer",version="1",class="1"\} 1/);
      expect(metrics).toMatch(/inferd_prediction_confidence_count\{model="breast_cancer",version="1"\} 1/);
      expect(metrics).toMatch(/inferd_batch_size_bucket\{model="breast_cancer",version="1",le="1"\} 1/);
      expect(metrics).toMatch(/inferd_request_duration_seconds_count\{protocol="rest",route="\/v2\/models\/:model\/infer",status_code="200"\} 1/);
    } finally {
      await server.shutdown(5000);
      collector.close();
    }
    const names = received.filter((s) => s.traceId === traceId).map((s) => s.name).sort();
    expect(names).toEqual(['batch', 'infer breast_cancer', 'inference', 'queue']);
    const access = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.status === 200);
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ reqId: traceId, route: '/v2/models/:model/infer', model: 'breast_cancer', version: '1', batchSize: 1 });
    expect(typeof access[0]!.queueMs).toBe('number');
    expect(lines.join('\n')).not.toContain('secret-token');
  });
});
