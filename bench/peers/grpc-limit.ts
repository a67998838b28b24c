/**
 * The gRPC limit: a bare @grpc/grpc-js server with inferd's .proto files and message decoding
 * (the same @grpc/proto-loader options), answering ModelInfer with a constant of the size a real
 * breast_cancer answer has. It speaks just enough of the Open Inference Protocol for `inferd
 * bench` and perf_analyzer (metadata, configuration, statistics, infer). No model, no pipeline:
 * what inferd's gRPC door costs beyond this is inferd's share of a call.
 *
 *   node --import tsx bench/peers/grpc-limit.ts --port 18701 [--channelz]
 *
 * grpc-js tracks every call for channelz unless told not to; the limit runs with it off, as
 * inferd does, and `--channelz` turns it back on to measure what it costs.
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { HEALTH_SERVICE, INFERENCE_SERVICE, serviceDefinition } from '../../src/server/grpc/proto.js';
import type { ModelInferRequestMsg, ModelInferResponseMsg } from '../../src/codecs/grpc-messages.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '18701' }, host: { type: 'string', default: '127.0.0.1' }, channelz: { type: 'boolean', default: false } },
});

const inputs = [{ name: 'features', datatype: 'FP32', shape: ['-1', '30'] }];
const outputs = [
  { name: 'probabilities', datatype: 'FP32', shape: ['-1', '2'] },
  { name: 'label', datatype: 'INT64', shape: ['-1'] },
];

const probabilities = Buffer.from(new Float32Array([0.0269, 0.9731]).buffer);
const label = Buffer.from(new BigInt64Array([1n]).buffer);
/** The answer to one row, as inferd's codec builds it (raw_output_contents). */
function answer(request: ModelInferRequestMsg): ModelInferResponseMsg {
  return {
    model_name: request.model_name ?? 'breast_cancer',
    model_version: '1',
    id: request.id ?? '',
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [1, 2] },
      { name: 'label', datatype: 'INT64', shape: [1] },
    ],
    raw_output_contents: [probabilities, label],
  };
}

let served = 0;
const unknown = (name: string | undefined): grpc.ServiceError =>
  Object.assign(new Error(`unknown model ${name}`), { code: grpc.status.NOT_FOUND, details: `unknown model ${name}`, metadata: new grpc.Metadata() });

const inference: grpc.UntypedServiceImplementation = {
  ServerLive: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { live: true }),
  ServerReady: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { ready: true }),
  ServerMetadata: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { name: 'grpc-limit', version: '0', extensions: [] }),
  ModelReady: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { ready: true }),
  ModelMetadata: (call: grpc.ServerUnaryCall<{ name?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
    call.request.name === 'breast_cancer' ? cb(null, { name: 'breast_cancer', versions: ['1'], platform: 'grpc-limit', inputs, outputs }) : cb(unknown(call.request.name)),
  ModelConfig: (call: grpc.ServerUnaryCall<{ name?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
    call.request.name === 'breast_cancer'
      ? cb(null, {
          config: {
            name: 'breast_cancer',
            platform: 'grpc-limit',
            backend: 'grpc-limit',
            max_batch_size: 64,
            input: [{ name: 'features', data_type: 'TYPE_FP32', dims: [30] }],
            output: [
              { name: 'probabilities', data_type: 'TYPE_FP32', dims: [2] },
              { name: 'label', data_type: 'TYPE_INT64', dims: [] },
            ],
            model_transaction_policy: { decoupled: false },
          },
        })
      : cb(unknown(call.request.name)),
  ModelStatistics: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
    cb(null, { model_stats: [{ name: 'breast_cancer', version: '1', inference_count: served, execution_count: served }] }),
  ModelInfer: (call: grpc.ServerUnaryCall<ModelInferRequestMsg, ModelInferResponseMsg>, cb: grpc.sendUnaryData<ModelInferResponseMsg>) => {
    if (call.request.model_name !== 'breast_cancer') return cb(unknown(call.request.model_name));
    served++;
    cb(null, answer(call.request));
  },
};

const health: grpc.UntypedServiceImplementation = {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }),
  Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
};

const server = new grpc.Server({ 'grpc.enable_channelz': values.channelz ? 1 : 0 });
server.addService(serviceDefinition(INFERENCE_SERVICE), inference);
server.addService(serviceDefinition(HEALTH_SERVICE), health);
const port = await new Promise<number>((res, rej) =>
  server.bindAsync(`${values.host}:${values.port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
);
process.stderr.write(`grpc-limit listening on ${values.host}:${port}${values.channelz ? ' (channelz on)' : ''}\n`);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => server.tryShutdown(() => process.exit(0)));
