/**
 * A large gRPC request's only tensor reaches the model's worker in the memory the message arrived
 * in, its bytes moved to an 8-byte boundary there, not in a copy: the model below reports where
 * its input lies (offset in its buffer, the buffer's size). Values are exact for every starting
 * alignment of the raw bytes, compressed and streamed messages included; several inputs, small
 * tensors and malformed requests take the usual path, and the server keeps serving.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { makeRepository, startInProcess } from '../../support/server.js';
import { LAYOUT_MODEL, LAYOUT_ONE_INPUT as ONE_INPUT, LAYOUT_TWO_INPUTS as TWO_INPUTS } from '../../support/layout-model.js';
import { call, callError, connect, streamInfer, type Clients } from './fixture.js';

interface InferResponse {
  id: string;
  outputs: Array<{ name: string; datatype: string; shape: string[] }>;
  raw_output_contents: Buffer[];
}

let server: InferdServer;
let clients: Clients;
let gzipClients: Clients;

beforeAll(async () => {
  const repo = await makeRepository({
    one: { config: ONE_INPUT, files: { '1/model.mjs': LAYOUT_MODEL } },
    two: { config: TWO_INPUTS, files: { '1/model.mjs': LAYOUT_MODEL } },
  });
  ({ server } = await startInProcess(repo, { server: { grpc_port: 0 } }));
  clients = connect(server.grpcPort);
  gzipClients = connect(server.grpcPort, { 'grpc.default_compression_algorithm': 2 });
}, 60_000);

afterAll(async () => {
  clients?.close();
  gzipClients?.close();
  await server?.shutdown(5000);
});

const SIZE = 3 * 224 * 224;
const image = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.cos(i) * 3.5));

/** A request for model `one`; the id's length moves where protobuf puts the raw bytes. */
const oneInput = (x: Float32Array, id: string): object => ({
  model_name: 'one',
  id,
  inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', String(x.length)] }],
  raw_input_contents: [Buffer.from(x.buffer, x.byteOffset, x.byteLength)],
});

function outputs(response: InferResponse): Record<string, Buffer> {
  return Object.fromEntries(response.outputs.map((o, i) => [o.name, response.raw_output_contents[i]!]));
}
const f32 = (b: Buffer): Float32Array => new Float32Array(new Uint8Array(b).buffer);
const f64 = (b: Buffer): number[] => Array.from(new Float64Array(new Uint8Array(b).buffer));

/** The tensor lies in the message's memory: protobuf bytes before it, at most 7 bytes after it. */
function expectInMessage(offset: number, bufferLength: number): void {
  expect(offset).toBeGreaterThan(0);
  expect(bufferLength - offset - SIZE * 4).toBeGreaterThanOrEqual(0);
  expect(bufferLength - offset - SIZE * 4).toBeLessThan(8);
}

describe('large gRPC messages: the sole tensor stays in the message memory', () => {
  it.each([0, 1, 2, 3, 4, 5, 6, 7])('hands the worker the message memory, tensor aligned, values exact (id of %i characters)', async (idLength) => {
    const x = image(SIZE);
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', oneInput(x, 'i'.repeat(idLength)));
    const out = outputs(response);
    expect(f32(out.x!)).toEqual(x);
    const [offset, length, bufferLength] = f64(out.x_layout!);
    // A view into the whole message (protobuf bytes before it) on an 8-byte boundary: no copy was
    // made. The raw bytes end the message; moved down to the boundary, they leave at most 7 after them.
    expect(length).toBe(SIZE * 4);
    expect(offset! % 8).toBe(0);
    expect(offset).toBeGreaterThan(0);
    expectInMessage(offset!, bufferLength!);
  });

  it('does the same for a compressed message', async () => {
    const x = image(SIZE);
    const { response } = await call<InferResponse>(gzipClients.inference, 'ModelInfer', oneInput(x, 'gz'));
    const out = outputs(response);
    expect(f32(out.x!)).toEqual(x);
    const [offset, length, bufferLength] = f64(out.x_layout!);
    expect(offset! % 8).toBe(0);
    expect(length).toBe(SIZE * 4);
    expectInMessage(offset!, bufferLength!);
  });

  it('does the same for each message of a stream', async () => {
    const sent = [image(SIZE), image(SIZE).map((v) => -v), image(SIZE).map((v) => v / 3)];
    const answers = await streamInfer<InferResponse>(
      clients.inference,
      sent.map((x, i) => oneInput(x, 's'.repeat(i + 1))),
    );
    expect(answers).toHaveLength(3);
    for (const answer of answers) {
      expect(answer.error_message).toBe('');
      const out = outputs(answer.infer_response);
      expect(f32(out.x!)).toEqual(sent[answer.infer_response.id.length - 1]);
      const [offset, , bufferLength] = f64(out.x_layout!);
      expect(offset! % 8).toBe(0);
      expectInMessage(offset!, bufferLength!);
    }
  });

  it('copies each input into a buffer of its own when the message holds several', async () => {
    const x = image(SIZE);
    const ids = BigInt64Array.of(123456789012345n, -5n, 1n);
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'two',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: ['1', String(SIZE)] },
        { name: 'ids', datatype: 'INT64', shape: ['3'] },
      ],
      raw_input_contents: [Buffer.from(x.buffer), Buffer.from(ids.buffer)],
    });
    const out = outputs(response);
    expect(f32(out.x!)).toEqual(x);
    expect(Array.from(new BigInt64Array(new Uint8Array(out.ids!).buffer))).toEqual([123456789012345n, -5n, 1n]);
    expect(f64(out.x_layout!)).toEqual([0, SIZE * 4, SIZE * 4]);
    expect(f64(out.ids_layout!)).toEqual([0, 24, 24]);
  });

  it('leaves small tensors to the usual path (the tensor owns a copy)', async () => {
    const x = image(100);
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', oneInput(x, 'abc'));
    const out = outputs(response);
    expect(f32(out.x!)).toEqual(x);
    expect(f64(out.x_layout!)).toEqual([0, 400, 400]);
  });

  it('refuses raw bytes that do not match the shape, or typed contents beside them, and keeps serving', async () => {
    const x = image(SIZE);
    const short = await callError(clients.inference, 'ModelInfer', {
      model_name: 'one',
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', String(SIZE + 1)] }],
      raw_input_contents: [Buffer.from(x.buffer)],
    });
    expect(short.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(short.details).toMatch(/raw_input_contents holds 602112 bytes/);
    const both = await callError(clients.inference, 'ModelInfer', {
      model_name: 'one',
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', String(SIZE)], contents: { fp32_contents: [1, 2] } }],
      raw_input_contents: [Buffer.from(x.buffer)],
    });
    expect(both.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(both.details).toMatch(/both contents/);
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', oneInput(x, 'again'));
    expect(f32(outputs(response).x!)).toEqual(x);
  });
});
