// Numeric parity: every golden file in the shared models reproduced through the REST API.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { SHARED_MODELS, EXAMPLES } from '../../support/paths.js';
import { makeRepository, postJson, startInProcess } from '../../support/server.js';

// The golden files name numpy dtypes; the protocol names its own.
const OIP: Record<string, string> = { float32: 'FP32', float64: 'FP64', int64: 'INT64', int32: 'INT32', bool: 'BOOL' };

type Golden = { inputs: Record<string, { shape: number[]; datatype: string; data: number[] }>; outputs: Record<string, { shape: number[]; datatype: string; data: number[] }> };

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
    digits: { copyFrom: join(EXAMPLES, 'digits') },
    text_encoder_tiny: { copyFrom: join(EXAMPLES, 'text_encoder_tiny') },
    mobilenet_v2: { copyFrom: join(SHARED_MODELS, 'mobilenet_v2'), config: 'max_batch_size: 2\nonnx: { intra_op_threads: 2 }\nwarmup: []\n' },
  });
  ({ server, url } = await startInProcess(repo));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

function expectClose(actual: number[], expected: number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

describe.each(['breast_cancer', 'digits', 'text_encoder_tiny'])('golden outputs of %s through REST', (model) => {
  it('match to 1e-5', async () => {
    const golden = JSON.parse(await readFile(join(SHARED_MODELS, model, 'golden.json'), 'utf8')) as Golden;
    const inputs = Object.entries(golden.inputs).map(([name, t]) => ({ name, shape: t.shape, datatype: OIP[t.datatype] ?? t.datatype, data: t.data }));
    const r = await postJson(`${url}/v2/models/${model}/infer`, { inputs });
    expect(r.status).toBe(200);
    expect(r.body.model_name).toBe(model);
    for (const [name, expected] of Object.entries(golden.outputs)) {
      const out = r.body.outputs.find((o: { name: string }) => o.name === name);
      expect(out, `output ${name}`).toBeDefined();
      expect(out.shape).toEqual(expected.shape);
      expect(out.datatype).toBe(OIP[expected.datatype] ?? expected.datatype);
      expectClose(out.data, expected.data, 1e-5);
    }
  });
});

it('mobilenet_v2 golden outputs match to 1e-5 through REST', async () => {
  const input = new Float32Array((await readFile(join(SHARED_MODELS, 'mobilenet_v2', 'golden_input_2x3x224x224.f32'))).buffer.slice(0));
  const expected = new Float32Array((await readFile(join(SHARED_MODELS, 'mobilenet_v2', 'golden_output_2x1000.f32'))).buffer.slice(0));
  const r = await postJson(`${url}/v2/models/mobilenet_v2/infer`, { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 3, 224, 224], data: Array.from(input) }] });
  expect(r.status).toBe(200);
  expect(r.body.outputs[0].shape).toEqual([2, 1000]);
  expectClose(r.body.outputs[0].data, Array.from(expected), 1e-5);
});
