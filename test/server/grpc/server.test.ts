import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, DeadlineExceededError } from '../../../src/core/errors.js';
import { createGrpcServer, type GrpcServer } from '../../../src/server/grpc/server.js';
import type { PipelineContext } from '../../../src/pipeline/types.js';
import { packageDefinition } from '../../../src/server/grpc/proto.js';
import { CASES } from '../binary/cases.js';
import { call, callError, connect, golden, streamInfer, TestService, type Clients } from './fixture.js';

interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, Record<string, unknown>>;
  outputs: Array<{ name: string; datatype: string; shape: string[]; parameters: Record<string, unknown>; contents: Record<string, unknown[]> | null }>;
  raw_output_contents: Buffer[];
}

const f32 = (buffer: Uint8Array): number[] => Array.from(new Float32Array(new Uint8Array(buffer).buffer));
const i64 = (buffer: Uint8Array): bigint[] => Array.from(new BigInt64Array(new Uint8Array(buffer).buffer));
const until = async (predicate: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

function closeTo(actual: number[], expected: number[], tolerance = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(tolerance));
}

let service: TestService;
let server: GrpcServer;
let port: number;
let clients: Clients;
const logs: Array<{ level: string; obj: object; msg?: string }> = [];
const logger = {
  info: (obj: object, msg?: string) => logs.push({ level: 'info', obj, msg }),
  warn: (obj: object, msg?: string) => logs.push({ level: 'warn', obj, msg }),
  error: (obj: object, msg?: string) => logs.push({ level: 'error', obj, msg }),
};

beforeAll(async () => {
  service = await new TestService().init();
  server = createGrpcServer(service, { host: '127.0.0.1', port: 0, logger, healthPollMs: 50, keepalive: { timeMs: 10_000, timeoutMs: 5_000 } });
  port = await server.start();
  clients = connect(port);
});

afterAll(async () => {
  clients?.close();
  await server?.drain(2000);
  await service?.close();
});

describe('gRPC server: health and metadata RPCs', () => {
  it('ServerLive and ServerReady', async () => {
    expect((await call(clients.inference, 'ServerLive', {})).response).toEqual({ live: true });
    expect((await call(clients.inference, 'ServerReady', {})).response).toEqual({ ready: true });
    service.serverReady = false;
    try {
      expect((await call(clients.inference, 'ServerReady', {})).response).toEqual({ ready: false });
    } finally {
      service.serverReady = true;
    }
  });

  it('ModelReady: ready, unloaded, unknown and a missing name', async () => {
    expect((await call(clients.inference, 'ModelReady', { name: 'breast_cancer' })).response).toEqual({ ready: true });
    expect((await call(clients.inference, 'ModelReady', { name: 'breast_cancer', version: '1' })).response).toEqual({ ready: true });
    expect((await call(clients.inference, 'ModelReady', { name: 'nope' })).response).toEqual({ ready: false });
    const error = await callError(clients.inference, 'ModelReady', {});
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/'name'/);
  });

  it('ServerMetadata', async () => {
    expect((await call(clients.inference, 'ServerMetadata', {})).response).toEqual(await service.metadata());
  });

  it('ModelMetadata, with dynamic dimensions as -1', async () => {
    const { response } = await call(clients.inference, 'ModelMetadata', { name: 'breast_cancer' });
    expect(response).toEqual({
      name: 'breast_cancer',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'features', datatype: 'FP32', shape: ['-1', '30'] }],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: ['-1', '2'] },
        { name: 'label', datatype: 'INT64', shape: ['-1'] },
      ],
    });
  });

  it('ModelMetadata of an unknown model or version is NOT_FOUND', async () => {
    const error = await callError(clients.inference, 'ModelMetadata', { name: 'nope' });
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(error.details).toBe("model 'nope' is not found");
    const version = await callError(clients.inference, 'ModelMetadata', { name: 'breast_cancer', version: '9' });
    expect(version.code).toBe(grpc.status.NOT_FOUND);
    expect(version.details).toBe("model 'breast_cancer' version '9' is not found");
  });

  it('ModelConfig derives a Triton-style configuration', async () => {
    const { response } = await call(clients.inference, 'ModelConfig', { name: 'breast_cancer' });
    expect(response.config).toMatchObject({
      name: 'breast_cancer',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 64,
      input: [{ name: 'features', data_type: 'TYPE_FP32', dims: ['30'] }],
      output: [
        { name: 'probabilities', data_type: 'TYPE_FP32', dims: ['2'] },
        { name: 'label', data_type: 'TYPE_INT64', dims: [] },
      ],
    });
  });

  it('ModelStatistics of one model, of all, and of an unknown one', async () => {
    const { response } = await call<{ model_stats: Array<Record<string, unknown>> }>(clients.inference, 'ModelStatistics', { name: 'breast_cancer' });
    expect(response.model_stats).toHaveLength(1);
    expect(response.model_stats[0]).toEqual({
      name: 'breast_cancer',
      version: '1',
      last_inference: '1700000000123',
      inference_count: '64',
      execution_count: '2',
      inference_stats: {
        success: { count: '2', ns: '5000000' },
        fail: { count: '1', ns: '1000' },
        queue: { count: '2', ns: '20000' },
        compute_input: { count: '2', ns: '3000' },
        compute_infer: { count: '2', ns: '4000000' },
        compute_output: { count: '2', ns: '5000' },
        cache_hit: { count: '0', ns: '0' },
        cache_miss: { count: '0', ns: '0' },
      },
      batch_stats: [
        {
          batch_size: '32',
          compute_input: { count: '2', ns: '3000' },
          compute_infer: { count: '2', ns: '4000000' },
          compute_output: { count: '2', ns: '5000' },
        },
      ],
    });
    const all = await call<{ model_stats: unknown[] }>(clients.inference, 'ModelStatistics', {});
    expect(all.response.model_stats).toHaveLength(4);
    expect((await callError(clients.inference, 'ModelStatistics', { name: 'nope' })).code).toBe(grpc.status.NOT_FOUND);
  });

  it('RepositoryIndex, RepositoryModelUnload and RepositoryModelLoad', async () => {
    await call(clients.inference, 'RepositoryModelUnload', {
      model_name: 'slow',
      parameters: { unload_dependents: { bool_param: false } },
    });
    const index = await call<{ models: unknown[] }>(clients.inference, 'RepositoryIndex', {});
    expect(index.response.models).toContainEqual({ name: 'slow', version: '', state: 'UNAVAILABLE', reason: 'unloaded' });
    expect(index.response.models).toContainEqual({ name: 'echo', version: '1', state: 'READY', reason: '' });
    const ready = await call<{ models: Array<{ name: string }> }>(clients.inference, 'RepositoryIndex', { ready: true });
    expect(ready.response.models.map((m) => m.name).sort()).toEqual(['breast_cancer', 'echo', 'failing']);
    expect((await call(clients.inference, 'ModelReady', { name: 'slow' })).response).toEqual({ ready: false });

    await call(clients.inference, 'RepositoryModelLoad', { model_name: 'slow' });
    expect((await call(clients.inference, 'ModelReady', { name: 'slow' })).response).toEqual({ ready: true });

    const overrides = await callError(clients.inference, 'RepositoryModelLoad', {
      model_name: 'slow',
      parameters: { config: { string_param: '{}' } },
    });
    expect(overrides.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(overrides.details).toMatch(/loading with parameters \(config\) is not supported/);
    expect((await callError(clients.inference, 'RepositoryModelLoad', { model_name: 'nope' })).code).toBe(grpc.status.NOT_FOUND);
  });
});

describe('gRPC server: ModelInfer', () => {
  const g = golden('breast_cancer');
  const features = g.inputs.features!;

  it('runs the real model from raw contents and returns raw outputs', async () => {
    const { response, headers } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'breast_cancer',
      id: 'req-1',
      inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape }],
      raw_input_contents: [Buffer.from(new Float32Array(features.data).buffer)],
    });
    expect(response.model_name).toBe('breast_cancer');
    expect(response.model_version).toBe('1');
    expect(response.id).toBe('req-1');
    expect(response.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ['probabilities', 'FP32', ['8', '2']],
      ['label', 'INT64', ['8']],
    ]);
    expect(response.outputs.every((o) => o.contents === null)).toBe(true);
    closeTo(f32(response.raw_output_contents[0]!), g.outputs.probabilities!.data);
    expect(i64(response.raw_output_contents[1]!)).toEqual(g.outputs.label!.data.map(BigInt));
    expect(headers.get('x-request-id')[0]).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
  });

  it('runs the real model from typed contents and returns typed contents on request', async () => {
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'breast_cancer',
      parameters: { typed_output_contents: { bool_param: true } },
      inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape, contents: { fp32_contents: features.data } }],
    });
    expect(response.raw_output_contents).toEqual([]);
    expect(response.parameters).toEqual({});
    closeTo(response.outputs[0]!.contents!.fp32_contents as number[], g.outputs.probabilities!.data);
    expect(response.outputs[1]!.contents!.int64_contents).toEqual(g.outputs.label!.data.map(String));
  });

  it('returns only the requested outputs, in the requested order', async () => {
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'breast_cancer',
      inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape }],
      outputs: [{ name: 'label' }],
      raw_input_contents: [Buffer.from(new Float32Array(features.data).buffer)],
    });
    expect(response.outputs.map((o) => o.name)).toEqual(['label']);
    expect(response.raw_output_contents).toHaveLength(1);
    expect(i64(response.raw_output_contents[0]!)).toEqual(g.outputs.label!.data.map(BigInt));
  });

  it('round-trips parameters of every kind', async () => {
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'echo',
      parameters: {
        b: { bool_param: true },
        i: { int64_param: '-9223372036854775808' },
        u: { uint64_param: '18446744073709551615' },
        d: { double_param: 2.5 },
        s: { string_param: 'text' },
        small: { int64_param: '7' },
      },
      inputs: [{ name: 'x', datatype: 'INT32', shape: ['1'], contents: { int_contents: [1] } }],
      outputs: [{ name: 'x', parameters: { top: { int64_param: '3' } } }],
    });
    // Each parameter arrives with its oneof case named by parameter_choice.
    const plain = (p: Record<string, Record<string, unknown>>) =>
      Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v[v.parameter_choice as string]]));
    expect(plain(response.parameters)).toEqual({ b: true, i: '-9223372036854775808', u: '18446744073709551615', d: 2.5, s: 'text', small: '7' });
    expect(plain(response.outputs[0]!.parameters as Record<string, Record<string, unknown>>)).toEqual({ top: '3' });
  });

  for (const c of CASES) {
    it(`carries ${c.datatype} raw through the server unchanged`, async () => {
      const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'x', datatype: c.datatype, shape: ['3'] }],
        raw_input_contents: [c.raw],
      });
      expect(response.outputs[0]).toMatchObject({ name: 'x', datatype: c.datatype, shape: ['3'] });
      expect(Buffer.from(response.raw_output_contents[0]!)).toEqual(c.raw);
    });
  }

  for (const c of CASES.filter((x) => x.field !== undefined)) {
    it(`carries ${c.datatype} typed contents through the server`, async () => {
      const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'x', datatype: c.datatype, shape: ['3'], contents: { [c.field!]: c.values } }],
      });
      expect(Buffer.from(response.raw_output_contents[0]!)).toEqual(c.raw);
      const typed = await call<InferResponse>(clients.inference, 'ModelInfer', {
        model_name: 'echo',
        parameters: { typed_output_contents: { bool_param: true } },
        inputs: [{ name: 'x', datatype: c.datatype, shape: ['3'], contents: { [c.field!]: c.values } }],
      });
      const values = typed.response.outputs[0]!.contents![c.field!]!;
      expect(c.datatype === 'BYTES' ? values.map((v) => Buffer.from(v as Buffer)) : values).toEqual(c.values);
    });
  }

  describe('answers INVALID_ARGUMENT naming the problem for', () => {
    const cases: Array<[string, object, RegExp]> = [
      [
        'contents and raw both set',
        { inputs: [{ name: 'x', datatype: 'FP32', shape: ['1'], contents: { fp32_contents: [1] } }], raw_input_contents: [Buffer.alloc(4)] },
        /input 'x': has both contents \(fp32_contents\) and raw_input_contents/,
      ],
      [
        'a raw size not matching shape and datatype',
        { inputs: [{ name: 'x', datatype: 'FP32', shape: ['2', '30'] }], raw_input_contents: [Buffer.alloc(200)] },
        /input 'x': raw_input_contents holds 200 bytes but shape \[2, 30\] of FP32 needs 240/,
      ],
      [
        'a raw count not matching the inputs',
        { inputs: [{ name: 'x', datatype: 'FP32', shape: ['1'] }], raw_input_contents: [Buffer.alloc(4), Buffer.alloc(4)] },
        /raw_input_contents has 2 entries but the request has 1 inputs/,
      ],
      ['an unknown datatype', { inputs: [{ name: 'x', datatype: 'COMPLEX64', shape: ['1'] }] }, /input 'x': unknown datatype 'COMPLEX64'/],
      [
        'a shape not matching the element count',
        { inputs: [{ name: 'x', datatype: 'FP32', shape: ['2', '2'], contents: { fp32_contents: [1, 2, 3] } }] },
        /input 'x': shape \[2, 2\] needs 4 elements but contents.fp32_contents holds 3/,
      ],
      ['FP16 in typed contents', { inputs: [{ name: 'h', datatype: 'FP16', shape: ['1'], contents: { fp32_contents: [1] } }] }, /FP16 data must be sent in raw_input_contents/],
    ];
    for (const [title, body, pattern] of cases) {
      it(title, async () => {
        const error = await callError(clients.inference, 'ModelInfer', { model_name: 'echo', ...body });
        expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(error.details).toMatch(pattern);
      });
    }

    it('a message that is not valid protobuf', async () => {
      const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      try {
        const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
          raw.makeUnaryRequest(
            '/inference.GRPCInferenceService/ModelInfer',
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.from([0x2a, 0x03, 0x0a, 0x01]), // an input whose length runs past the end
            (err) => (err ? resolve(err) : reject(new Error('expected an error'))),
          );
        });
        expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(error.details).toMatch(/the request is not a valid protobuf message/);
      } finally {
        raw.close();
      }
    });
  });

  it('maps an unknown model to NOT_FOUND', async () => {
    const error = await callError(clients.inference, 'ModelInfer', { model_name: 'nope', inputs: [] });
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(error.details).toBe("model 'nope' is not found");
  });

  it('maps every error code of the data plane to its gRPC status, with retry-after', async () => {
    const expected: Record<string, grpc.status> = {
      INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
      FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
      NOT_FOUND: grpc.status.NOT_FOUND,
      ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
      PAYLOAD_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
      UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
      PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
      RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
      UNAVAILABLE: grpc.status.UNAVAILABLE,
      DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
      CANCELLED: grpc.status.CANCELLED,
      INTERNAL: grpc.status.INTERNAL,
    };
    for (const [code, status] of Object.entries(expected)) {
      const error = await callError(clients.inference, 'ModelInfer', {
        model_name: 'failing',
        parameters: { code: { string_param: code } },
        inputs: [],
      });
      expect([code, error.code]).toEqual([code, status]);
      expect(error.details).toBe(`failing on purpose with ${code}`);
      if (code === 'RESOURCE_EXHAUSTED') expect(error.metadata.get('retry-after')).toEqual(['2']);
    }
  });

  it('takes the correlation id from x-request-id, x-correlation-id or traceparent, and echoes it', async () => {
    const cases: Array<[Record<string, string>, string | RegExp, string]> = [
      [{ 'x-request-id': 'abc-123' }, 'abc-123', 'x-request-id'],
      [{ 'x-correlation-id': 'corr.7' }, 'corr.7', 'x-correlation-id'],
      [{ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, '4bf92f3577b34da6a3ce929d0e0e4736', 'x-request-id'],
      [{ 'x-request-id': 'bad id with spaces' }, /^[0-9a-f]{16}-[0-9a-f]+$/, 'x-request-id'],
    ];
    for (const [entries, expected, key] of cases) {
      const metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(entries)) metadata.set(k, v);
      const before = service.calls.contexts.length;
      const { headers } = await call(clients.inference, 'ModelInfer', { model_name: 'echo', inputs: [] }, { metadata });
      const context = service.calls.contexts[before]!;
      expect(context.protocol).toBe('grpc');
      if (typeof expected === 'string') expect(context.requestId).toBe(expected);
      else expect(context.requestId).toMatch(expected);
      // Echoed under the key it came in.
      expect(headers.get(key)).toEqual([context.requestId]);
    }
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', 'on-error');
    const error = await callError(clients.inference, 'ModelInfer', { model_name: 'nope' }, { metadata });
    expect(error.code).toBe(grpc.status.NOT_FOUND);
  });

  it('turns the gRPC deadline into the context deadline and answers DEADLINE_EXCEEDED', async () => {
    const deadline = Date.now() + 300;
    const before = service.calls.contexts.length;
    const error = await callError(
      clients.inference,
      'ModelInfer',
      { model_name: 'slow', parameters: { sleep_ms: { int64_param: 5000 } }, inputs: [] },
      { deadline },
    );
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    const context = service.calls.contexts[before]!;
    // The deadline travels as a relative timeout: the call's own latency (a loaded machine's too) shifts it a little.
    expect(Math.abs(context.deadline! - deadline)).toBeLessThan(250);
    await until(() => service.calls.aborted.some((a) => a.requestId === context.requestId));
    expect(service.calls.aborted.find((a) => a.requestId === context.requestId)!.reason).toBeInstanceOf(DeadlineExceededError);
    expect((await call(clients.inference, 'ServerLive', {})).response).toEqual({ live: true });
  });

  it('aborts the work of a call its client cancels, and keeps serving', async () => {
    const before = service.calls.contexts.length;
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', 'to-cancel');
    const pending = new Promise<grpc.ServiceError>((resolve) => {
      const c = (clients.inference.ModelInfer as (r: object, m: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void) => grpc.ClientUnaryCall).call(
        clients.inference,
        { model_name: 'slow', parameters: { sleep_ms: { int64_param: 10_000 } }, inputs: [] },
        metadata,
        (error) => resolve(error!),
      );
      void until(() => service.calls.contexts.length > before).then(() => c.cancel());
    });
    expect((await pending).code).toBe(grpc.status.CANCELLED);
    await until(() => service.calls.aborted.some((a) => a.requestId === 'to-cancel'));
    expect(service.calls.aborted.find((a) => a.requestId === 'to-cancel')!.reason).toBeInstanceOf(CancelledError);
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'echo',
      inputs: [{ name: 'x', datatype: 'INT32', shape: ['1'], contents: { int_contents: [5] } }],
    });
    expect(response.outputs[0]!.name).toBe('x');
  });

  it('survives a client that drops its connection mid-call', async () => {
    const definition = packageDefinition()['inference.GRPCInferenceService'] as protoLoader.ServiceDefinition;
    const body = definition.ModelInfer!.requestSerialize({
      model_name: 'slow',
      parameters: { sleep_ms: { int64_param: 10_000 } },
      inputs: [],
    });
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': '/inference.GRPCInferenceService/ModelInfer',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-request-id': 'to-drop',
    });
    stream.on('error', () => {});
    stream.end(frame);
    await until(() => service.calls.contexts.some((c) => c.requestId === 'to-drop'));
    session.destroy();
    await until(() => service.calls.aborted.some((a) => a.requestId === 'to-drop'));
    expect((await call(clients.inference, 'ServerLive', {})).response).toEqual({ live: true });
  });

  it('accepts a 5 MiB request under the default limit', async () => {
    const count = (5 * 1024 * 1024) / 4;
    const data = new Float32Array(count).map((_, i) => i % 1000);
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'echo',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [String(count)] }],
      outputs: [{ name: 'x' }],
      raw_input_contents: [Buffer.from(data.buffer)],
    });
    expect(response.outputs[0]!.shape).toEqual([String(count)]);
  }, 30_000);
});

describe('gRPC server: ModelStreamInfer', () => {
  it('answers each request of a stream, errors in-band', async () => {
    const answers = await streamInfer<InferResponse>(clients.inference, [
      { model_name: 'echo', id: 'a', inputs: [{ name: 'x', datatype: 'INT32', shape: ['1'], contents: { int_contents: [9] } }] },
      { model_name: 'nope', id: 'b', inputs: [] },
      { model_name: 'echo', id: 'c', inputs: [{ name: 'x', datatype: 'FP32', shape: ['2'] }], raw_input_contents: [Buffer.alloc(3)] },
    ]);
    const byId = Object.fromEntries(answers.map((a) => [a.infer_response.id, a]));
    expect(Object.keys(byId).sort()).toEqual(['a', 'b', 'c']);
    expect(byId.a!.error_message).toBe('');
    expect(Buffer.from(byId.a!.infer_response.raw_output_contents[0]!)).toEqual(Buffer.from(new Int32Array([9]).buffer));
    expect(byId.b!.error_message).toBe("model 'nope' is not found");
    expect(byId.c!.error_message).toMatch(/raw_input_contents holds 3 bytes/);
  });
});

describe('gRPC server: health service', () => {
  it('Check reports the server and each model', async () => {
    expect((await call(clients.health, 'Check', { service: '' })).response).toEqual({ status: 'SERVING' });
    expect((await call(clients.health, 'Check', { service: 'inference.GRPCInferenceService' })).response).toEqual({ status: 'SERVING' });
    expect((await call(clients.health, 'Check', { service: 'breast_cancer' })).response).toEqual({ status: 'SERVING' });
    service.serverReady = false;
    try {
      expect((await call(clients.health, 'Check', {})).response).toEqual({ status: 'NOT_SERVING' });
    } finally {
      service.serverReady = true;
    }
    const unknown = await callError(clients.health, 'Check', { service: 'nope' });
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    expect(unknown.details).toBe("unknown service 'nope'");
  });

  it('Watch streams changes of a model and reports unknown services', async () => {
    const watch = (clients.health.Watch as (r: object) => grpc.ClientReadableStream<{ status: string }>).call(clients.health, { service: 'echo' });
    const seen: string[] = [];
    watch.on('data', (m: { status: string }) => seen.push(m.status));
    watch.on('error', () => {});
    await until(() => seen.length === 1);
    await service.unloadModel({} as PipelineContext, 'echo');
    await until(() => seen.length === 2);
    await service.loadModel({} as PipelineContext, 'echo');
    await until(() => seen.length === 3);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
    watch.cancel();

    const unknown = (clients.health.Watch as (r: object) => grpc.ClientReadableStream<{ status: string }>).call(clients.health, { service: 'nope' });
    const first = await new Promise<{ status: string }>((resolve) => unknown.once('data', resolve));
    expect(first).toEqual({ status: 'SERVICE_UNKNOWN' });
    unknown.on('error', () => {});
    unknown.cancel();
  });
});

describe('gRPC server: limits and shutdown', () => {
  it('rejects a message over maxMessageBytes with RESOURCE_EXHAUSTED and accepts one under it', async () => {
    const svc = new TestService();
    const small = createGrpcServer(svc, { host: '127.0.0.1', port: 0, maxMessageBytes: 6 * 1024 * 1024 });
    const p = await small.start();
    const c = connect(p);
    try {
      const under = Buffer.alloc(5 * 1024 * 1024);
      const ok = await call<InferResponse>(c.inference, 'ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'x', datatype: 'UINT8', shape: [String(under.length)] }],
        raw_input_contents: [under],
      });
      expect(ok.response.raw_output_contents[0]!.length).toBe(under.length);
      const over = Buffer.alloc(7 * 1024 * 1024);
      const error = await callError(c.inference, 'ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'x', datatype: 'UINT8', shape: [String(over.length)] }],
        raw_input_contents: [over],
      });
      expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect((await call(c.inference, 'ServerLive', {})).response).toEqual({ live: true });
    } finally {
      c.close();
      small.forceStop();
    }
  }, 30_000);

  it('drains: calls in flight finish, watches end, new calls are refused', async () => {
    const svc = new TestService();
    const s = createGrpcServer(svc, { host: '127.0.0.1', port: 0, healthPollMs: 50 });
    const p = await s.start();
    const c = connect(p);
    try {
      const watch = (c.health.Watch as (r: object) => grpc.ClientReadableStream<{ status: string }>).call(c.health, {});
      const statuses: string[] = [];
      const watchEnded = new Promise<void>((resolve) => {
        watch.on('data', (m: { status: string }) => statuses.push(m.status));
        watch.on('end', resolve);
        watch.on('error', () => resolve());
      });
      await until(() => statuses.length === 1);
      const inFlight = call<InferResponse>(c.inference, 'ModelInfer', {
        model_name: 'slow',
        parameters: { sleep_ms: { int64_param: 300 } },
        inputs: [{ name: 'x', datatype: 'INT32', shape: ['1'], contents: { int_contents: [4] } }],
      });
      await until(() => svc.calls.contexts.length === 1);
      const drained = s.drain(5000);
      await watchEnded;
      expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
      const { response } = await inFlight;
      expect(response.outputs[0]!.name).toBe('x');
      await drained;
      const late = connect(p, { 'grpc.initial_reconnect_backoff_ms': 50 });
      const error = await callError(late.inference, 'ServerLive', {}, { deadline: Date.now() + 500 });
      expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(error.code);
      late.close();
    } finally {
      c.close();
      s.forceStop();
    }
  });

  it('cuts off calls still running at the drain deadline and aborts their work', async () => {
    const svc = new TestService();
    const s = createGrpcServer(svc, { host: '127.0.0.1', port: 0 });
    const p = await s.start();
    const c = connect(p);
    try {
      const inFlight = callError(c.inference, 'ModelInfer', { model_name: 'slow', parameters: { sleep_ms: { int64_param: 10_000 } }, inputs: [] });
      await until(() => svc.calls.contexts.length === 1);
      const started = Date.now();
      await s.drain(200);
      expect(Date.now() - started).toBeLessThan(2000);
      const error = await inFlight;
      expect(error.code).toBe(grpc.status.UNAVAILABLE);
      expect(error.details).toBe('the server is shutting down');
      await until(() => svc.calls.aborted.length === 1);
    } finally {
      c.close();
      s.forceStop();
    }
  });
});

describe('gRPC server: flow control for large messages', () => {
  it('grants each connection and stream an 8 MiB receive window, so a large tensor is not sent 64 KB at a time', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      // The server's own SETTINGS come first with the default; the widened ones right after.
      await until(() => session.remoteSettings?.initialWindowSize === 8 * 1024 * 1024);
      expect(logs.filter((l) => l.level === 'warn' && /flow-control/.test(l.msg ?? ''))).toEqual([]);
    } finally {
      session.close();
    }
  });

  it('still answers a 4 MB request whole, and the model sees every byte', async () => {
    const values = Float32Array.from({ length: 1 << 20 }, (_, i) => (i % 9973) / 7);
    const { response } = await call<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'echo',
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', String(values.length)] }],
      raw_input_contents: [Buffer.from(values.buffer)],
    });
    expect(Buffer.compare(Buffer.from(response.raw_output_contents[0]!), Buffer.from(values.buffer))).toBe(0);
  });
});
