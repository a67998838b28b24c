// A model that fails to load is reported and keeps the server unready; a worker that dies is
// replaced and its request gets an error, not a hang.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { EXAMPLES } from '../support/paths.js';
import { getJson, makeRepository, postJson, startInProcess } from '../support/server.js';

const CRASHY = `runtime: js
max_batch_size: 0
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
warmup: []
`;
// x[0] == 13 ends the worker thread mid-request, as a native crash or an OOM would.
const CRASHY_MODEL = `export function predict({ x }) {
  if (x.data[0] === 13) process.exit(3);
  return { y: { datatype: 'INT32', shape: x.shape, data: x.data } };
}`;

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    broken: { config: 'max_batch_size: 4\n', files: { '1/model.onnx': 'this is not an onnx file' } },
    crashy: { config: CRASHY, files: { '1/model.mjs': CRASHY_MODEL } },
    breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
  });
  ({ server, url } = await startInProcess(repo));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

describe('a model that fails to load', () => {
  it('is reported with its reason, the server is not ready, and other models serve', async () => {
    const ready = await getJson(`${url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body.failures[0].name).toBe('broken');
    expect(ready.body.failures[0].reason).toMatch(/onnxruntime could not load/);
    expect((await getJson(`${url}/health`)).status).toBe(200);
    expect((await getJson(`${url}/health/startup`)).status).toBe(200);
    const index = await postJson(`${url}/v2/repository/index`, {});
    expect(index.body.find((e: { name: string }) => e.name === 'broken')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/could not load/) });
    const r = await postJson(`${url}/v2/models/broken/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] });
    expect(r.status).toBe(503);
    expect(r.body.error).toMatch(/failed to load/);
    const ok = await postJson(`${url}/v2/models/breast_cancer/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array(30).fill(1) }] });
    expect(ok.status).toBe(200);
  });
});

describe('a worker that dies', () => {
  it('fails its in-flight request with an error and is replaced', async () => {
    const crash = await postJson(`${url}/v2/models/crashy/infer`, { inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [13] }] });
    expect(crash.status).toBe(500);
    expect(crash.body.error).toMatch(/worker/);
    const after = await postJson(`${url}/v2/models/crashy/infer`, { inputs: [{ name: 'x', datatype: 'INT32', shape: [2], data: [1, 2] }] });
    expect(after.status).toBe(200);
    expect(after.body.outputs[0].data).toEqual([1, 2]);
  });
});
