import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBench } from '../../src/loadgen/index.js';
import { defaultProtoPath } from '../../src/loadgen/grpc.js';

const proto = defaultProtoPath();

interface InferCall {
  model_name: string;
  inputs: { name: string; datatype: string; shape: string[]; contents?: { fp32_contents?: number[] } }[];
  raw_input_contents: Buffer[];
}

describe('gRPC mode against a fake GRPCInferenceService', () => {
  let server: grpc.Server;
  let address = '';
  const received: InferCall[] = [];
  let success = 0;

  beforeAll(async () => {
    const def = protoLoader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      inference: { GRPCInferenceService: { service: grpc.ServiceDefinition } };
    };
    server = new grpc.Server();
    const unimplemented = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED });
    const impl: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(pkg.inference.GRPCInferenceService.service)) impl[name] = unimplemented;
    impl['ModelMetadata'] = (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (call.request.name !== 'fake') return cb({ code: grpc.status.NOT_FOUND, details: 'no such model' });
      cb(null, {
        name: 'fake',
        versions: ['1'],
        platform: 'fake',
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'out', datatype: 'FP32', shape: [-1, 4] }],
      });
    };
    impl['ModelInfer'] = (call: grpc.ServerUnaryCall<InferCall, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      received.push(call.request);
      if (received.length % 5 === 0) return cb({ code: grpc.status.UNAVAILABLE, details: 'busy' });
      success++;
      cb(null, { model_name: 'fake', outputs: [] });
    };
    impl['ModelStatistics'] = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      const d = (ns: number) => ({ count: String(success), ns: String(success * ns) });
      cb(null, {
        model_stats: [
          {
            name: 'fake',
            version: '1',
            inference_stats: { success: d(500_000), queue: d(100_000), compute_input: d(0), compute_infer: d(400_000), compute_output: d(0) },
          },
        ],
      });
    };
    server.addService(pkg.inference.GRPCInferenceService.service, impl);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(() => {
    server?.forceShutdown();
  });

  it('sends typed contents, counts gRPC status errors and reads ModelStatistics', async () => {
    received.length = 0;
    const r = await runBench({
      url: address,
      protocol: 'grpc',
      model: 'fake',
      load: { kind: 'concurrency', values: [2] },
      windowMs: 250,
      windows: 2,
      stabilityPercent: 10,
      maxTrials: 3,
      batchSize: 2,
    });
    const step = r.steps[0]!;
    expect(r.protocol).toBe('grpc');
    expect(r.inferencesPerRequest).toBe(2);
    expect(step.successes).toBeGreaterThan(10);
    expect(Object.keys(step.errors)).toEqual(['grpc:UNAVAILABLE']);
    expect(step.errorSamples['grpc:UNAVAILABLE']).toBe('busy');
    const share = step.errorCount / (step.errorCount + step.successes);
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.3);
    expect(r.serverStats).toBe(true);
    expect(step.server).toMatchObject({ queueUs: 100, computeInferUs: 400 });
    const first = received[0]!;
    expect(first.model_name).toBe('fake');
    expect(first.inputs[0]!.shape).toEqual(['2', '4']);
    expect(first.inputs[0]!.contents!.fp32_contents).toHaveLength(8);
    expect(first.raw_input_contents).toHaveLength(0);
  });

  it('gives the same accounting through @grpc/grpc-js', async () => {
    const r = await runBench({
      url: address,
      protocol: 'grpc',
      grpcClient: 'grpc-js',
      model: 'fake',
      load: { kind: 'concurrency', values: [2] },
      windowMs: 250,
      windows: 1,
      stabilityPercent: 10,
      maxTrials: 3,
    });
    const step = r.steps[0]!;
    expect(step.successes).toBeGreaterThan(5);
    expect(Object.keys(step.errors)).toEqual(['grpc:UNAVAILABLE']);
    expect(step.errorSamples['grpc:UNAVAILABLE']).toBe('busy');
  });

  it('sends raw_input_contents with --binary', async () => {
    received.length = 0;
    await runBench({
      url: `grpc://${address}`,
      protocol: 'grpc',
      model: 'fake',
      load: { kind: 'concurrency', values: [1] },
      windowMs: 200,
      windows: 1,
      stabilityPercent: 10,
      maxTrials: 3,
      binary: true,
      grpcChannels: 2,
    });
    // The last call is surely from this run (calls of the previous one may land late).
    const last = received.at(-1)!;
    expect(last.raw_input_contents).toHaveLength(1);
    expect(last.raw_input_contents[0]!.length).toBe(16);
    expect(last.inputs[0]!.contents?.fp32_contents ?? []).toHaveLength(0);
  });

  it('fails clearly for an unknown model', async () => {
    await expect(
      runBench({
        url: address,
        protocol: 'grpc',
        model: 'nope',
        load: { kind: 'concurrency', values: [1] },
        windowMs: 100,
        windows: 1,
        stabilityPercent: 10,
        maxTrials: 1,
      }),
    ).rejects.toThrow(/ModelMetadata for nope/);
  });
});
