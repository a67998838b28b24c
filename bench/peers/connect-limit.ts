/**
 * The gRPC limit of another library: @connectrpc/connect-node serving the gRPC protocol on
 * node:http2, with inferd's grpc_service.proto, answering ModelInfer with a constant of the size a
 * real breast_cancer answer has (like bench/peers/grpc-limit.ts does with @grpc/grpc-js). It
 * exists to tell whether a different gRPC server library would cost less per call; it is a floor
 * only, not a server.
 *
 *   node --import tsx bench/peers/connect-limit.ts --port 18702
 *
 * The message descriptors come from the .proto files as @grpc/proto-loader parses them (it keeps
 * the serialized FileDescriptorProtos), so no code is generated.
 */
import { createServer } from 'node:http2';
import { parseArgs } from 'node:util';
import { create, createFileRegistry, fromBinary, type DescMethod, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type DescriptorProto, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { ConnectError, Code, type ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { INFERENCE_SERVICE, packageDefinition } from '../../src/server/grpc/proto.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '18702' }, host: { type: 'string', default: '127.0.0.1' } } });

/** The inference service's descriptor, from the FileDescriptorProtos proto-loader kept. */
function inferenceService(): DescService {
  const definition = packageDefinition()['inference.ModelInferRequest'] as { fileDescriptorProtos?: Buffer[] } | undefined;
  const protos = definition?.fileDescriptorProtos;
  if (protos === undefined) throw new Error('@grpc/proto-loader kept no file descriptors for inference.ModelInferRequest');
  const files = protos.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
  files.forEach(qualifyTypeNames);
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  const service = registry.getService(INFERENCE_SERVICE);
  if (service === undefined) throw new Error(`${INFERENCE_SERVICE} is missing from the file descriptors`);
  return service;
}

/**
 * protobufjs writes field types as they appear in the .proto (`InferParameter`); descriptors
 * name them fully (`.inference.InferParameter`). Resolved the way protoc does: innermost scope first.
 */
function qualifyTypeNames(file: FileDescriptorProto): void {
  const known = new Set<string>();
  const collect = (scope: string, messages: DescriptorProto[], enums: { name: string }[]): void => {
    for (const e of enums) known.add(`${scope}.${e.name}`);
    for (const m of messages) {
      known.add(`${scope}.${m.name}`);
      collect(`${scope}.${m.name}`, m.nestedType, m.enumType);
    }
  };
  const root = file.package ? `.${file.package}` : '';
  collect(root, file.messageType, file.enumType);
  const fix = (scope: string, messages: DescriptorProto[]): void => {
    for (const m of messages) {
      const inner = `${scope}.${m.name}`;
      for (const field of m.field) {
        if (field.typeName === '' || field.typeName.startsWith('.')) continue;
        for (let s = inner; ; s = s.slice(0, s.lastIndexOf('.'))) {
          if (known.has(`${s}.${field.typeName}`)) {
            field.typeName = `${s}.${field.typeName}`;
            break;
          }
          if (s === '') throw new Error(`cannot resolve type ${field.typeName} of ${inner}.${field.name}`);
        }
      }
      fix(inner, m.nestedType);
    }
  };
  fix(root, file.messageType);
}

const service = inferenceService();
const method = (name: string): DescMethod => {
  const m = service.methods.find((x) => x.name === name);
  if (m === undefined) throw new Error(`${INFERENCE_SERVICE} has no method ${name}`);
  return m;
};

// DataType enum values of grpc_service.proto.
const TYPE_INT64 = 9;
const TYPE_FP32 = 11;

const probabilities = new Uint8Array(new Float32Array([0.0269, 0.9731]).buffer);
const label = new Uint8Array(new BigInt64Array([1n]).buffer);
let served = 0;
const known = (name: string): void => {
  if (name !== 'breast_cancer') throw new ConnectError(`unknown model ${name}`, Code.NotFound);
};

type Impl = (request: Record<string, unknown>) => Record<string, unknown>;
const implementations: Record<string, Impl> = {
  ServerLive: () => ({ live: true }),
  ServerReady: () => ({ ready: true }),
  ModelReady: () => ({ ready: true }),
  ServerMetadata: () => ({ name: 'connect-limit', version: '0', extensions: [] }),
  ModelMetadata: (req) => {
    known(req.name as string);
    return {
      name: 'breast_cancer',
      versions: ['1'],
      platform: 'connect-limit',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1n, 30n] }],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [-1n, 2n] },
        { name: 'label', datatype: 'INT64', shape: [-1n] },
      ],
    };
  },
  ModelConfig: (req) => {
    known(req.name as string);
    return {
      config: {
        name: 'breast_cancer',
        platform: 'connect-limit',
        backend: 'connect-limit',
        maxBatchSize: 64,
        input: [{ name: 'features', dataType: TYPE_FP32, dims: [30n] }],
        output: [
          { name: 'probabilities', dataType: TYPE_FP32, dims: [2n] },
          { name: 'label', dataType: TYPE_INT64, dims: [] },
        ],
        modelTransactionPolicy: { decoupled: false },
      },
    };
  },
  ModelStatistics: () => ({ modelStats: [{ name: 'breast_cancer', version: '1', inferenceCount: BigInt(served), executionCount: BigInt(served) }] }),
  ModelInfer: (req) => {
    known(req.modelName as string);
    served++;
    return {
      modelName: 'breast_cancer',
      modelVersion: '1',
      id: req.id,
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [1n, 2n] },
        { name: 'label', datatype: 'INT64', shape: [1n] },
      ],
      rawOutputContents: [probabilities, label],
    };
  },
};

const routes = (router: ConnectRouter): void => {
  for (const [name, impl] of Object.entries(implementations)) {
    // The implementations return message init shapes; connect builds the messages.
    router.rpc(method(name), impl as never);
  }
};

const server = createServer(connectNodeAdapter({ routes, grpc: true, grpcWeb: false, connect: false }));
await new Promise<void>((res) => server.listen(Number(values.port), values.host, res));
process.stderr.write(`connect-limit listening on ${values.host}:${values.port}\n`);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => server.close(() => process.exit(0)));
