/**
 * The binary extension plugged into the REST door, end to end over HTTP (Fastify inject) with
 * the real data plane on the breast_cancer example model.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataPlane } from '../../../src/pipeline/dataplane.js';
import { standardPolicies } from '../../../src/pipeline/standard.js';
import { InvalidInputError } from '../../../src/core/errors.js';
import { ModelManager } from '../../../src/models/manager.js';
import { ModelRepository } from '../../../src/models/repository.js';
import { binaryCodec } from '../../../src/codecs/binary-request.js';
import { createRestApp } from '../../../src/server/rest/app.js';
import { EXAMPLES, SHARED_MODELS } from '../../support/paths.js';

interface Golden {
  inputs: Record<string, { shape: number[]; data: number[] }>;
  outputs: Record<string, { shape: number[]; data: number[] }>;
}
const golden = JSON.parse(readFileSync(resolve(SHARED_MODELS, 'breast_cancer', 'golden.json'), 'utf8')) as Golden;
const features = golden.inputs.features!;
const featureBytes = Buffer.from(new Float32Array(features.data).buffer);

function binaryBody(header: object, chunks: Buffer[]): { payload: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return {
    payload: Buffer.concat([json, ...chunks]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) },
  };
}

function splitResponse(body: Buffer, headerLength: number) {
  const header = JSON.parse(body.subarray(0, headerLength).toString()) as {
    outputs: Array<{ name: string; datatype: string; shape: number[]; parameters?: { binary_data_size?: number }; data?: unknown[] }>;
  };
  let offset = headerLength;
  const binary: Record<string, Buffer> = {};
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    binary[o.name] = body.subarray(offset, offset + size);
    offset += size;
  }
  expect(offset).toBe(body.length);
  return { header, binary };
}

const closeTo = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(1e-5);
};

describe('binary codec in the REST door', () => {
  let manager: ModelManager;
  let app: FastifyInstance;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    manager = new ModelManager(new ModelRepository(EXAMPLES), { logger, drainDeadlineMs: 1000 });
    await manager.load('breast_cancer');
    const plane = new DataPlane(manager, { policies: (self) => standardPolicies({ manager, plane: self }) });
    plane.markStarted();
    app = await createRestApp(plane, { bodyLimitBytes: 8 << 20, keepAliveTimeoutMs: 5000, requestTimeoutMs: 30_000, logger });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await manager?.close();
  });

  it('takes binary inputs and returns binary outputs on request', async () => {
    const { payload, headers } = binaryBody(
      {
        id: 'b1',
        inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape, parameters: { binary_data_size: featureBytes.length } }],
        outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'label', parameters: { binary_data: false } }],
      },
      [featureBytes],
    );
    const r = await app.inject({ method: 'POST', url: '/v2/models/breast_cancer/infer', payload, headers });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/application\/octet-stream/);
    const { header, binary } = splitResponse(r.rawPayload, Number(r.headers['inference-header-content-length']));
    expect(header).toMatchObject({ model_name: 'breast_cancer', id: 'b1' });
    expect(header.outputs[0]).toMatchObject({ name: 'probabilities', parameters: { binary_data_size: 64 } });
    expect(header.outputs[0]!.data).toBeUndefined();
    closeTo(new Float32Array(new Uint8Array(binary.probabilities!).buffer), golden.outputs.probabilities!.data);
    expect(header.outputs[1]).toMatchObject({ name: 'label', datatype: 'INT64', data: golden.outputs.label!.data });
  });

  it('answers a JSON request with binary_data_output as all-binary', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/v2/models/breast_cancer/infer',
      payload: { parameters: { binary_data_output: true }, inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape, data: features.data }] },
    });
    expect(r.statusCode).toBe(200);
    const { header, binary } = splitResponse(r.rawPayload, Number(r.headers['inference-header-content-length']));
    expect(header.outputs.map((o) => [o.name, o.parameters?.binary_data_size])).toEqual([
      ['probabilities', 64],
      ['label', 64],
    ]);
    expect(Array.from(new BigInt64Array(new Uint8Array(binary.label!).buffer), Number)).toEqual(golden.outputs.label!.data);
  });

  it('answers plain JSON when nothing asks for binary', async () => {
    const { payload, headers } = binaryBody(
      { inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape, parameters: { binary_data_size: featureBytes.length } }] },
      [featureBytes],
    );
    const r = await app.inject({ method: 'POST', url: '/v2/models/breast_cancer/infer', payload, headers });
    expect(r.statusCode).toBe(200);
    expect(r.headers['inference-header-content-length']).toBeUndefined();
    const body = r.json<{ outputs: Array<{ name: string; data: number[] }> }>();
    closeTo(body.outputs[0]!.data, golden.outputs.probabilities!.data);
  });

  it('rejects a binary size that does not match the shape with 400', async () => {
    const { payload, headers } = binaryBody(
      { inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape, parameters: { binary_data_size: featureBytes.length - 4 } }] },
      [featureBytes.subarray(4)],
    );
    const r = await app.inject({ method: 'POST', url: '/v2/models/breast_cancer/infer', payload, headers });
    expect(r.statusCode).toBe(400);
    expect(r.json<{ error: string }>().error).toBe("input 'features': the binary data holds 956 bytes but shape [8, 30] of FP32 needs 960");
  });

  it('decodes mixed inputs and keeps binary_data_size away from the model', () => {
    const a = Buffer.from(new Int32Array([1, 2]).buffer);
    const { payload, headers } = binaryBody(
      {
        inputs: [
          { name: 'json', datatype: 'FP32', shape: [1], data: [0.5] },
          { name: 'bin', datatype: 'INT32', shape: [2], parameters: { binary_data_size: 8, note: 'kept' } },
          { name: 'bin2', datatype: 'BOOL', shape: [1], parameters: { binary_data_size: 1 } },
        ],
      },
      [a, Buffer.from([1])],
    );
    const request = binaryCodec.decode(payload, Number(headers['inference-header-content-length']));
    expect(request.inputs.map((t) => [t.name, t.datatype, t.shape, Array.from(t.data as ArrayLike<number>), t.parameters])).toEqual([
      ['json', 'FP32', [1], [0.5], undefined],
      ['bin', 'INT32', [2], [1, 2], { note: 'kept' }],
      ['bin2', 'BOOL', [1], [1], undefined],
    ]);
    const nameless = binaryBody({ inputs: [{ datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }] }, [Buffer.alloc(4)]);
    expect(() => binaryCodec.decode(nameless.payload, Number(nameless.headers['inference-header-content-length']))).toThrow(
      new InvalidInputError("inputs[0]: 'name' must be a non-empty string"),
    );
  });
});
