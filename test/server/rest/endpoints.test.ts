// Every REST endpoint of the serving core, through a real socket.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { EXAMPLES } from '../../support/paths.js';
import { getJson, makeRepository, postJson, startInProcess } from '../../support/server.js';

let server: InferdServer;
let url: string;
const ROW = [17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189];

beforeAll(async () => {
  const repo = await makeRepository({
    breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
    text_tokenizer: { copyFrom: join(EXAMPLES, 'text_tokenizer') },
  });
  ({ server, url } = await startInProcess(repo));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

describe('health', () => {
  it('liveness, readiness and startup answer 200 once started', async () => {
    for (const path of ['/health', '/health/live', '/health/ready', '/health/startup', '/v2/health/live', '/v2/health/ready']) {
      const r = await getJson(url + path);
      expect(r.status, path).toBe(200);
    }
  });
});

describe('metadata', () => {
  it('server metadata names the server, its version and extensions', async () => {
    const r = await getJson(`${url}/v2`);
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('inferd');
    expect(r.body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.body.extensions).toContain('model_repository');
  });

  it('model metadata, with and without a version', async () => {
    const a = await getJson(`${url}/v2/models/breast_cancer`);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      name: 'breast_cancer',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
        { name: 'label', datatype: 'INT64', shape: [-1] },
      ],
    });
    const b = await getJson(`${url}/v2/models/breast_cancer/versions/1`);
    expect(b.status).toBe(200);
    expect(b.body.versions).toEqual(['1']);
    const js = await getJson(`${url}/v2/models/text_tokenizer`);
    expect(js.body.platform).toBe('inferd_js');
  });

  it('model readiness, with and without a version', async () => {
    expect((await getJson(`${url}/v2/models/breast_cancer/ready`)).status).toBe(200);
    expect((await getJson(`${url}/v2/models/breast_cancer/versions/1/ready`)).status).toBe(200);
    expect((await getJson(`${url}/v2/models/nope/ready`)).status).toBe(404);
    expect((await getJson(`${url}/v2/models/breast_cancer/versions/7/ready`)).status).toBe(404);
  });
});

describe('inference', () => {
  it('flat and nested data give the same answer; id echoed; parameters passed back', async () => {
    const flat = await postJson(`${url}/v2/models/breast_cancer/infer`, {
      id: 'req-1',
      parameters: { tenant: 'blue', priority: 1 },
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 30], data: [...ROW, ...ROW] }],
    });
    const nested = await postJson(`${url}/v2/models/breast_cancer/versions/1/infer`, {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 30], data: [ROW, ROW] }],
    });
    expect(flat.status).toBe(200);
    expect(nested.status).toBe(200);
    expect(flat.body.id).toBe('req-1');
    expect(flat.body.parameters).toEqual({ tenant: 'blue' });
    expect(flat.body.model_version).toBe('1');
    expect(flat.body.outputs).toEqual(nested.body.outputs);
    const label = flat.body.outputs.find((o: { name: string }) => o.name === 'label');
    expect(label).toEqual({ name: 'label', datatype: 'INT64', shape: [2], data: [0, 0] });
  });

  it('returns only the requested outputs', async () => {
    const r = await postJson(`${url}/v2/models/breast_cancer/infer`, {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: ROW }],
      outputs: [{ name: 'label' }],
    });
    expect(r.status).toBe(200);
    expect(r.body.outputs.map((o: { name: string }) => o.name)).toEqual(['label']);
  });

  it('KServe V1 :predict', async () => {
    const r = await postJson(`${url}/v1/models/breast_cancer:predict`, { instances: [ROW, ROW] });
    expect(r.status).toBe(200);
    expect(r.body.predictions).toHaveLength(2);
    expect(r.body.predictions[0].label).toBe(0);
    expect(r.body.predictions[0].probabilities).toHaveLength(2);
    const v = await postJson(`${url}/v1/models/breast_cancer/versions/1:predict`, { instances: [ROW] });
    expect(v.status).toBe(200);
    const bad = await postJson(`${url}/v1/models/breast_cancer:explain`, { instances: [ROW] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/predict/);
  });

  it('a custom JavaScript model runs in a worker and returns BYTES-derived tensors', async () => {
    const r = await postJson(`${url}/v2/models/text_tokenizer/infer`, {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['Hello world', 'one two three'] }],
    });
    expect(r.status).toBe(200);
    const mask = r.body.outputs.find((o: { name: string }) => o.name === 'attention_mask');
    expect(mask.shape).toEqual([2, 3]);
    expect(mask.data).toEqual([1, 1, 0, 1, 1, 1]);
  });

  it('request ids: taken from X-Request-ID or X-Correlation-ID and echoed under the same header, generated otherwise', async () => {
    const body = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: ROW }] };
    const a = await postJson(`${url}/v2/models/breast_cancer/infer`, body, { 'x-request-id': 'abc-123' });
    expect(a.headers.get('x-request-id')).toBe('abc-123');
    const b = await postJson(`${url}/v2/models/breast_cancer/infer`, body, { 'x-correlation-id': 'corr-9' });
    expect(b.headers.get('x-correlation-id')).toBe('corr-9');
    expect(b.headers.get('x-request-id')).toBeNull();
    const c = await postJson(`${url}/v2/models/breast_cancer/infer`, body);
    expect(c.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
  });
});

describe('statistics and repository', () => {
  it('statistics count successes, failures and batches in Triton\'s shape', async () => {
    const r = await getJson(`${url}/v2/models/breast_cancer/stats`);
    expect(r.status).toBe(200);
    const s = r.body.model_stats[0];
    expect(s.name).toBe('breast_cancer');
    expect(s.inference_stats.success.count).toBeGreaterThan(0);
    expect(s.inference_stats.success.ns).toBeGreaterThan(0);
    expect(s.execution_count).toBeGreaterThan(0);
    expect(s.batch_stats.length).toBeGreaterThan(0);
    const all = await getJson(`${url}/v2/models/stats`);
    expect(all.body.model_stats.map((m: { name: string }) => m.name).sort()).toEqual(['breast_cancer', 'text_tokenizer']);
    expect((await getJson(`${url}/v2/models/nope/stats`)).status).toBe(404);
  });

  it('repository index, unload and load', async () => {
    const index = await postJson(`${url}/v2/repository/index`, {});
    expect(index.status).toBe(200);
    expect(index.body).toContainEqual({ name: 'breast_cancer', version: '1', state: 'READY' });
    expect((await postJson(`${url}/v2/repository/models/text_tokenizer/unload`, {})).status).toBe(200);
    const after = await postJson(`${url}/v2/repository/index`, {});
    expect(after.body.find((e: { name: string }) => e.name === 'text_tokenizer').state).toBe('UNAVAILABLE');
    const refused = await postJson(`${url}/v2/models/text_tokenizer/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['x'] }] });
    expect(refused.status).toBe(503);
    expect((await postJson(`${url}/v2/repository/models/text_tokenizer/load`, {})).status).toBe(200);
    const again = await postJson(`${url}/v2/models/text_tokenizer/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['x'] }] });
    expect(again.status).toBe(200);
    expect((await postJson(`${url}/v2/repository/models/nope/load`, {})).status).toBe(404);
  });
});
