// Every OIP datatype in JSON, both data layouts, and every bad-input case of the serving core.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATATYPES } from '../../../src/core/datatypes.js';
import type { InferdServer } from '../../../src/server/index.js';
import { EXAMPLES } from '../../support/paths.js';
import { getJson, makeRepository, postJson, startInProcess } from '../../support/server.js';

const ECHO_CONFIG = `runtime: js
max_batch_size: 0
inputs:
${DATATYPES.map((d) => `  - { name: ${d.toLowerCase()}, datatype: ${d}, shape: [-1, -1] }`).join('\n')}
outputs:
${DATATYPES.map((d) => `  - { name: ${d.toLowerCase()}, datatype: ${d}, shape: [-1, -1] }`).join('\n')}
warmup: []
`;
// Returns every input unchanged: what comes back is exactly what the server decoded.
const ECHO_MODEL = `export function predict(inputs) { return Object.values(inputs); }`;

const VALUES: Record<string, unknown[]> = {
  BOOL: [true, false, true, true],
  UINT8: [0, 1, 254, 255],
  UINT16: [0, 1, 65534, 65535],
  UINT32: [0, 1, 4294967294, 4294967295],
  UINT64: [0, 1, 2 ** 40, 2 ** 52],
  INT8: [-128, -1, 0, 127],
  INT16: [-32768, -1, 0, 32767],
  INT32: [-2147483648, -1, 0, 2147483647],
  INT64: [-(2 ** 52), -1, 0, 2 ** 52],
  FP16: [0.5, -2, 1024, 0.000030517578125],
  BF16: [0.5, -2, 1024, 3.140625],
  FP32: [0.5, -2.25, 1e10, 3.1415927410125732],
  FP64: [0.1, -2.25, 1e300, Math.PI],
  BYTES: ['a', '', 'héllo', 'x y z'],
};

let server: InferdServer;
let url: string;
const ROW = Array.from({ length: 30 }, (_, i) => i + 1);

beforeAll(async () => {
  const repo = await makeRepository({
    echo: { config: ECHO_CONFIG, files: { '1/model.mjs': ECHO_MODEL } },
    breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
  });
  ({ server, url } = await startInProcess(repo, { server: { body_limit_bytes: 64 * 1024 } }));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

function echoRequest(nested: boolean) {
  return {
    inputs: DATATYPES.map((d) => {
      const v = VALUES[d]!;
      return { name: d.toLowerCase(), datatype: d, shape: [2, 2], data: nested ? [v.slice(0, 2), v.slice(2)] : v };
    }),
  };
}

describe('every datatype round-trips through JSON', () => {
  it.each([false, true])('nested layout: %s', async (nested) => {
    const r = await postJson(`${url}/v2/models/echo/infer`, echoRequest(nested));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    for (const d of DATATYPES) {
      const out = r.body.outputs.find((o: { name: string }) => o.name === d.toLowerCase());
      expect(out.datatype, d).toBe(d);
      expect(out.shape, d).toEqual([2, 2]);
      expect(out.data, d).toEqual(VALUES[d]);
    }
  });
});

describe('bad input gets a 4xx naming the problem, and the server keeps serving', () => {
  const infer = (body: unknown, model = 'breast_cancer') => postJson(`${url}/v2/models/${model}/infer`, body);
  const ok = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: ROW }] };

  const cases: Array<[string, () => Promise<{ status: number; body: any }>, number, RegExp]> = [
    ['malformed JSON', () => infer('{"inputs": [ {'), 400, /not valid JSON/],
    ['an empty body', () => infer(''), 400, /empty/],
    ['no inputs', () => infer({ inputs: [] }), 400, /non-empty list/],
    ['wrong datatype', () => infer({ inputs: [{ name: 'features', datatype: 'FP64', shape: [1, 30], data: ROW }] }), 400, /'features' must be FP32, got FP64/],
    ['an unknown datatype', () => infer({ inputs: [{ name: 'features', datatype: 'FLOAT', shape: [1, 30], data: ROW }] }), 400, /unknown datatype "FLOAT"/],
    ['shape not matching the element count', () => infer({ inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 30], data: ROW }] }), 400, /needs 60 elements but 30 were given/],
    ['a shape not matching the model', () => infer({ inputs: [{ name: 'features', datatype: 'FP32', shape: [3, 10], data: ROW }] }), 400, /dimension 1 is 10, expected 30/],
    ['a negative dimension', () => infer({ inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30], data: ROW }] }), 400, /non-negative integers/],
    ['a missing input', () => infer({ inputs: [{ name: 'other', datatype: 'FP32', shape: [1], data: [1] }] }), 400, /missing input 'features'/],
    ['an unknown input name', () => infer({ inputs: [...ok.inputs, { name: 'extra', datatype: 'FP32', shape: [1], data: [1] }] }), 400, /unknown input 'extra'/],
    ['an unknown output name', () => infer({ ...ok, outputs: [{ name: 'nope' }] }), 400, /unknown output 'nope'/],
    ['a non-number in a numeric tensor', () => infer({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: [...ROW.slice(0, 29), 'x'] }] }), 400, /element 29 is "x", expected a valid FP32 number/],
    ['an integer out of range', () => infer({ inputs: [{ name: 'uint8', datatype: 'UINT8', shape: [1, 1], data: [256] }] }, 'echo'), 400, /element 0 is 256/],
    ['an unknown model', () => infer(ok, 'nope'), 404, /model 'nope' is not found/],
    ['an unknown version', () => postJson(`${url}/v2/models/breast_cancer/versions/9/infer`, ok), 404, /version '9' is not found/],
    ['more rows than max_batch_size', () => infer({ inputs: [{ name: 'features', datatype: 'FP32', shape: [65, 30], data: Array(65 * 30).fill(1) }] }), 400, /at most 64/],
    ['a body over the limit', () => infer({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array(20000).fill(1.2345678) }] }), 413, /larger than the limit/],
    ['a bad priority', () => infer({ ...ok, parameters: { priority: 7 } }), 400, /priority must be an integer from 1/],
  ];

  it.each(cases)('%s', async (_name, send, status, message) => {
    const r = await send();
    expect(r.status).toBe(status);
    expect(r.body.error).toMatch(message);
    const after = await infer(ok);
    expect(after.status).toBe(200);
  });

  it('an unknown route answers 404 in the OIP error shape', async () => {
    const r = await getJson(`${url}/v2/nothing/here`);
    expect(r.status).toBe(404);
    expect(typeof r.body.error).toBe('string');
  });
});
