// Loading strategies: eager models hold readiness back until they serve; lazy ones (on disk or
// from the registry) load on their first request, concurrent first requests share one load, and
// readiness never waits for them.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceRequest } from '../../src/core/types.js';
import type { InferdServer } from '../../src/server/index.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { BC_ONNX, BC_REQUEST, BC_SERVING_CONFIG, request, sqliteRegistry, type TempRegistry } from './support.js';
import { callContext } from '../../src/pipeline/context.js';

const DIGITS_REQUEST = { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 8, 8], data: Array(64).fill(0.5) }] };

let reg: TempRegistry;
let server: InferdServer;
let url: string;

beforeAll(async () => {
  reg = await sqliteRegistry();
  await reg.registry.register('breast_cancer', BC_ONNX);
  await reg.registry.setAlias('breast_cancer', 'champion', 1);
  const repo = await makeRepository({
    breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
    digits: { copyFrom: join(EXAMPLES, 'digits') },
    text_encoder_tiny: { copyFrom: join(EXAMPLES, 'text_encoder_tiny') },
  });
  ({ server, url } = await startInProcess(repo, {
    registry: reg.url,
    registry_options: { home: reg.home },
    models: [
      { repository: 'digits', load: 'lazy' },
      { repository: 'text_encoder_tiny', load: 'lazy' },
      { registry: 'breast_cancer@champion', name: 'bc_lazy', load: 'lazy', config: BC_SERVING_CONFIG },
    ],
  }));
});

afterAll(async () => {
  await server?.shutdown(5000);
  await reg?.cleanup();
});

describe('lazy models', () => {
  it('are not loaded at start and do not hold readiness back; eager ones are loaded', async () => {
    expect((await request(url, 'GET', '/health/ready')).status).toBe(200);
    expect(server.manager.serving.loadCount('breast_cancer')).toBe(1);
    for (const name of ['digits', 'text_encoder_tiny', 'bc_lazy']) expect(server.manager.serving.loadCount(name)).toBe(0);
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect(index.body).toContainEqual({ name: 'digits', state: 'UNAVAILABLE', reason: 'not loaded yet: loads on its first request' });
    expect(index.body).toContainEqual({ name: 'bc_lazy', state: 'UNAVAILABLE', reason: 'not loaded yet: loads on its first request' });
    const status = await request(url, 'GET', '/v2/admin/models/digits');
    expect(status.body).toMatchObject({ load: 'lazy', lazy_pending: true, loads: 0, versions: [] });
  });

  it('load once for many concurrent first requests, and readiness stays green while they load', async () => {
    // Sample the model's state and the server's readiness on every tick while the load runs.
    const samples: Array<{ state: string; ready: boolean }> = [];
    const sampler = setInterval(() => samples.push({ state: server.manager.statusOf('digits').state, ready: server.plane.readiness().ready }), 1);
    const requests = Array.from({ length: 12 }, (_, i) =>
      server.plane.infer(callContext('digits', undefined, { requestId: `first-${i}` }), DIGITS_REQUEST as unknown as InferenceRequest),
    );
    const answers = await Promise.all(requests).finally(() => clearInterval(sampler));
    expect(samples.some((s) => s.state === 'LOADING')).toBe(true);
    expect(samples.filter((s) => !s.ready)).toEqual([]);
    expect(answers.every((a) => a.model_version === '1' && a.outputs[0]!.shape.join() === '1,10')).toBe(true);
    expect(server.manager.serving.loadCount('digits')).toBe(1);
    // Later requests use the loaded version.
    const again = await request(url, 'POST', '/v2/models/digits/infer', DIGITS_REQUEST);
    expect(again.status).toBe(200);
    expect(server.manager.serving.loadCount('digits')).toBe(1);
    expect(server.manager.statusOf('digits')).toMatchObject({ state: 'READY', lazy_pending: false, loads: 1 });
  });

  it('from the registry: concurrent first requests over HTTP share one load and report the registry version', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, () => request(url, 'POST', '/v2/models/bc_lazy/infer', BC_REQUEST)));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(200));
    expect(new Set(answers.map((a) => a.body.model_version))).toEqual(new Set(['1']));
    expect(answers.every((a) => a.body.model_name === 'bc_lazy')).toBe(true);
    expect(server.manager.serving.loadCount('bc_lazy')).toBe(1);
  });

  it('metadata and readiness do not start a load; a V1 :predict loads the model as a V2 infer does', async () => {
    const meta = await request(url, 'GET', '/v2/models/text_encoder_tiny');
    expect(meta.status).toBe(503);
    expect(meta.body.error).toMatch(/not loaded yet and loads on its first inference request/);
    expect((await request(url, 'GET', '/v2/models/text_encoder_tiny/ready')).status).toBe(503);
    expect((await request(url, 'GET', '/v2/models/text_encoder_tiny/config')).status).toBe(503);
    expect(server.manager.serving.loadCount('text_encoder_tiny')).toBe(0);
    const instance = { input_ids: [2747, 3297, 93, 3309], attention_mask: [1, 1, 1, 1] };
    const predicted = await request(url, 'POST', '/v1/models/text_encoder_tiny:predict', { instances: [instance] });
    expect(predicted.status).toBe(200);
    expect(predicted.body.predictions[0]).toHaveLength(128);
    expect(server.manager.serving.loadCount('text_encoder_tiny')).toBe(1);
    expect((await request(url, 'GET', '/v2/models/text_encoder_tiny')).status).toBe(200);
  });

  it('stay unloaded after an explicit unload, and load again by an explicit load', async () => {
    expect((await request(url, 'POST', '/v2/repository/models/digits/unload', {})).status).toBe(200);
    expect((await request(url, 'POST', '/v2/models/digits/infer', DIGITS_REQUEST)).status).toBe(503);
    expect(server.manager.serving.loadCount('digits')).toBe(1);
    expect((await request(url, 'POST', '/v2/repository/models/digits/load', {})).status).toBe(200);
    expect((await request(url, 'POST', '/v2/models/digits/infer', DIGITS_REQUEST)).status).toBe(200);
    expect(server.manager.serving.loadCount('digits')).toBe(2);
  });
});
