/**
 * Large binary-extension bodies are read into memory of their own with the tensor bytes on an
 * 8-byte boundary, and a body's only tensor reaches the model's worker in that memory, not in a
 * copy: the model below reports where its input lies (offset in its buffer, the buffer's size).
 * Values are exact for every alignment of the JSON header, several inputs still get one buffer
 * each, and short, cut or malformed bodies are refused while the server keeps serving.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { makeRepository, startInProcess } from '../../support/server.js';
import { LAYOUT_MODEL, LAYOUT_ONE_INPUT as ONE_INPUT, LAYOUT_TWO_INPUTS as TWO_INPUTS } from '../../support/layout-model.js';

let served: { server: InferdServer; url: string };

beforeAll(async () => {
  const repo = await makeRepository({
    one: { config: ONE_INPUT, files: { '1/model.mjs': LAYOUT_MODEL } },
    two: { config: TWO_INPUTS, files: { '1/model.mjs': LAYOUT_MODEL } },
  });
  served = await startInProcess(repo, { server: { body_limit_bytes: 4 * 1024 * 1024 } });
});

afterAll(async () => {
  await served?.server.shutdown(5000);
});

interface Answer {
  status: number;
  outputs: Record<string, number[]>;
  error?: string;
}

/** A binary request whose JSON header is padded with spaces to `headerPad` more bytes. */
function body(inputs: Array<{ name: string; datatype: string; shape: number[]; bytes: Buffer }>, headerPad = 0): { payload: Buffer; headerLength: number } {
  const header = {
    inputs: inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape, parameters: { binary_data_size: i.bytes.length } })),
    parameters: { binary_data_output: false },
  };
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(headerPad));
  return { payload: Buffer.concat([json, ...inputs.map((i) => i.bytes)]), headerLength: json.length };
}

async function post(model: string, payload: Buffer, headerLength: number): Promise<Answer> {
  const r = await fetch(`${served.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
    body: new Uint8Array(payload),
  });
  const json = (await r.json()) as { outputs?: Array<{ name: string; data: number[] }>; error?: string };
  return { status: r.status, outputs: Object.fromEntries((json.outputs ?? []).map((o) => [o.name, o.data])), ...(json.error !== undefined ? { error: json.error } : {}) };
}

const image = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i) * 2.5));
const SIZE = 3 * 224 * 224;

describe('large binary bodies in memory of their own', () => {
  it.each([0, 1, 2, 3, 4, 5, 6, 7])('hands the worker the body itself, tensor aligned, values exact (header length + %i)', async (headerPad) => {
    const x = image(SIZE);
    const { payload, headerLength } = body([{ name: 'x', datatype: 'FP32', shape: [1, SIZE], bytes: Buffer.from(x.buffer) }], headerPad);
    const answer = await post('one', payload, headerLength);
    expect(answer.status, answer.error).toBe(200);
    expect(Float32Array.from(answer.outputs.x!)).toEqual(x);
    const [offset, length, bufferLength] = answer.outputs.x_layout!;
    // A view into the whole body (header included) on an 8-byte boundary: no copy was made.
    expect(length).toBe(SIZE * 4);
    expect(offset! % 8).toBe(0);
    expect(offset).toBeGreaterThanOrEqual(headerLength);
    expect(bufferLength).toBe(offset! + SIZE * 4);
  });

  it('copies each input into a buffer of its own when the body holds several', async () => {
    const x = image(SIZE);
    const ids = BigInt64Array.of(123456789012345n, -5n, 1n);
    const { payload, headerLength } = body(
      [
        { name: 'x', datatype: 'FP32', shape: [1, SIZE], bytes: Buffer.from(x.buffer) },
        { name: 'ids', datatype: 'INT64', shape: [3], bytes: Buffer.from(ids.buffer) },
      ],
      3,
    );
    const answer = await post('two', payload, headerLength);
    expect(answer.status, answer.error).toBe(200);
    expect(Float32Array.from(answer.outputs.x!)).toEqual(x);
    expect(answer.outputs.ids!.map(String)).toEqual(['123456789012345', '-5', '1']);
    expect(answer.outputs.x_layout).toEqual([0, SIZE * 4, SIZE * 4]);
    expect(answer.outputs.ids_layout).toEqual([0, 24, 24]);
  });

  it('leaves small bodies to the usual path (the tensor owns a copy)', async () => {
    const x = image(100);
    const { payload, headerLength } = body([{ name: 'x', datatype: 'FP32', shape: [1, 100], bytes: Buffer.from(x.buffer) }], 1);
    const answer = await post('one', payload, headerLength);
    expect(answer.status, answer.error).toBe(200);
    expect(Float32Array.from(answer.outputs.x!)).toEqual(x);
    expect(answer.outputs.x_layout).toEqual([0, 400, 400]);
  });

  it('refuses a binary size that does not match the shape, and a header length beyond the body, with 400', async () => {
    const x = image(SIZE);
    const wrong = body([{ name: 'x', datatype: 'FP32', shape: [1, SIZE - 1], bytes: Buffer.from(x.buffer) }]);
    const a = await post('one', wrong.payload, wrong.headerLength);
    expect(a.status).toBe(400);
    expect(a.error).toMatch(/binary_data_size|bytes/);
    const right = body([{ name: 'x', datatype: 'FP32', shape: [1, SIZE], bytes: Buffer.from(x.buffer) }]);
    const b = await post('one', right.payload, right.payload.length + 1);
    expect(b.status).toBe(400);
    expect(b.error).toMatch(/Inference-Header-Content-Length/);
  });

  it('keeps serving after a client sends part of a body and goes away', async () => {
    const { payload, headerLength } = body([{ name: 'x', datatype: 'FP32', shape: [1, SIZE], bytes: Buffer.from(image(SIZE).buffer) }]);
    const port = Number(new URL(served.url).port);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          `POST /v2/models/one/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ninference-header-content-length: ${headerLength}\r\ncontent-length: ${payload.length}\r\n\r\n`,
        );
        socket.write(payload.subarray(0, 200_000), () => {
          socket.destroy();
          resolve();
        });
      });
      socket.on('error', reject);
    });
    const x = image(SIZE);
    const again = body([{ name: 'x', datatype: 'FP32', shape: [1, SIZE], bytes: Buffer.from(x.buffer) }], 5);
    const answer = await post('one', again.payload, again.headerLength);
    expect(answer.status, answer.error).toBe(200);
    expect(Float32Array.from(answer.outputs.x!)).toEqual(x);
  });
});
