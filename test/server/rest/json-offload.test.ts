// Large JSON bodies are decoded in a decoder thread (server.json_offload_bytes): the tensors and
// every refusal are the same as when the event loop decodes them, and the server keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { makeRepository, postJson, startInProcess } from '../../support/server.js';

const ECHO_CONFIG = `runtime: js
max_batch_size: 0
inputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
  - { name: ids, datatype: INT64, shape: [-1] }
outputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
  - { name: ids, datatype: INT64, shape: [-1] }
warmup: []
`;
// Returns every input unchanged: what comes back is exactly what the server decoded.
const ECHO_MODEL = `export function predict(inputs) { return Object.values(inputs); }`;

let offloaded: { server: InferdServer; url: string };
let inPlace: { server: InferdServer; url: string };

beforeAll(async () => {
  const repo = await makeRepository({ echo: { config: ECHO_CONFIG, files: { '1/model.mjs': ECHO_MODEL } } });
  // Every JSON body goes to the decoder thread on one server, none on the other.
  offloaded = await startInProcess(repo, { server: { json_offload_bytes: 1, body_limit_bytes: 4 * 1024 * 1024 } });
  inPlace = await startInProcess(repo, { server: { json_offload_bytes: 0, body_limit_bytes: 4 * 1024 * 1024 } });
});

afterAll(async () => {
  await offloaded?.server.shutdown(5000);
  await inPlace?.server.shutdown(5000);
});

const infer = (base: string, body: unknown) => postJson(`${base}/v2/models/echo/infer`, body);

function largeRequest(rows: number, nested: boolean) {
  const values = Array.from({ length: rows * 1000 }, (_, i) => Math.fround(Math.sin(i) * 3));
  const data = nested ? Array.from({ length: rows }, (_, r) => values.slice(r * 1000, (r + 1) * 1000)) : values;
  return {
    id: 'big',
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [rows, 1000], data },
      { name: 'ids', datatype: 'INT64', shape: [3], data: ['9223372036854775807', 1, -5] },
    ],
  };
}

describe('JSON bodies decoded off the event loop', () => {
  it.each([false, true])('decodes a large request exactly (nested: %s)', async (nested) => {
    const request = largeRequest(100, nested);
    const [a, b] = await Promise.all([infer(offloaded.url, request), infer(inPlace.url, request)]);
    expect(a.status, JSON.stringify(a.body).slice(0, 300)).toBe(200);
    expect(a.body).toEqual(b.body);
    const flat = nested ? (request.inputs[0]!.data as number[][]).flat() : request.inputs[0]!.data;
    expect(a.body.outputs[0].data).toEqual(flat);
    expect(a.body.id).toBe('big');
  });

  it('answers many concurrent large requests', async () => {
    const request = largeRequest(20, false);
    const answers = await Promise.all(Array.from({ length: 12 }, () => infer(offloaded.url, request)));
    for (const r of answers) expect(r.status).toBe(200);
  });

  const refusals: Array<[string, unknown]> = [
    ['malformed JSON', '{"inputs": [ {'],
    ['a count that does not match the shape', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3] }] }],
    ['ragged nested data', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3]] }] }],
    ['a value beyond FP32', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [3.5e38] }] }],
    ['a string in FP32', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: ['x'] }] }],
    ['an INT64 beyond its range', '{"inputs":[{"name":"ids","datatype":"INT64","shape":[1],"data":[9223372036854775808]}]}'],
    ['an unknown datatype', { inputs: [{ name: 'x', datatype: 'FLOAT', shape: [1, 1], data: [1] }] }],
    ['no inputs', { inputs: [] }],
  ];

  it.each(refusals)('refuses %s with the same status and message', async (_name, body) => {
    const [a, b] = await Promise.all([infer(offloaded.url, body), infer(inPlace.url, body)]);
    expect(a.status).toBe(400);
    expect(a.status).toBe(b.status);
    expect(a.body.error).toBe(b.body.error);
    const after = await infer(offloaded.url, largeRequest(1, false));
    expect(after.status).toBe(200);
  });

  it('keeps the body limit', async () => {
    const r = await infer(offloaded.url, largeRequest(500, false));
    expect(r.status).toBe(413);
    expect(r.body.error).toMatch(/larger than the limit/);
  });
});
