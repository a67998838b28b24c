/**
 * One inference request in each of the three wire formats, encoded once before a run, and the
 * decoders that turn a response back into numbers. The decoders are used only to check that all
 * three protocols give the same answer; the measured path never decodes a response.
 */
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

export type Protocol = 'json' | 'binary' | 'grpc';
export const PROTOCOLS: readonly Protocol[] = ['json', 'binary', 'grpc'];
export const PROTOCOL_LABEL: Record<Protocol, string> = {
  json: 'REST + JSON',
  binary: 'REST + binary',
  grpc: 'gRPC (raw_input_contents)',
};

/** A single FP32 input tensor, as a client holds it before encoding. */
export interface InputTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** A request ready to send: the body bytes and, for HTTP, the headers that go with them. */
export interface EncodedRequest {
  protocol: Protocol;
  body: Buffer;
  headers: Record<string, string>;
}

/** The subset of a proto-loader method definition the clients use. */
export interface MethodDefinition {
  path: string;
  requestSerialize(value: object): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

const PROTO_FILE = fileURLToPath(new URL('../../src/server/grpc/proto/grpc_service.proto', import.meta.url));

let modelInfer: MethodDefinition | undefined;

/** `inference.GRPCInferenceService/ModelInfer`, loaded from the server's own .proto with keepCase. */
export function modelInferMethod(): MethodDefinition {
  if (modelInfer === undefined) {
    const definition = protoLoader.loadSync(PROTO_FILE, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const service = definition['inference.GRPCInferenceService'] as unknown as Record<string, MethodDefinition> | undefined;
    if (service?.ModelInfer === undefined) throw new Error(`${PROTO_FILE} does not define inference.GRPCInferenceService/ModelInfer`);
    modelInfer = service.ModelInfer;
  }
  return modelInfer;
}

function rawBytes(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** OIP JSON: flat row-major `data`, numbers as a JavaScript client would write a Float32Array. */
function encodeJson(input: InputTensor): EncodedRequest {
  const body = { inputs: [{ name: input.name, shape: input.shape, datatype: 'FP32', data: Array.from(input.values) }] };
  return { protocol: 'json', body: Buffer.from(JSON.stringify(body), 'utf8'), headers: { 'content-type': 'application/json' } };
}

/** Binary tensor extension: a JSON header, then the raw input bytes; every output asked for as binary. */
function encodeBinary(input: InputTensor): EncodedRequest {
  const raw = rawBytes(input.values);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: input.name, shape: input.shape, datatype: 'FP32', parameters: { binary_data_size: raw.byteLength } }],
      parameters: { binary_data_output: true },
    }),
    'utf8',
  );
  return {
    protocol: 'binary',
    body: Buffer.concat([header, raw]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
  };
}

/** gRPC ModelInferRequest with the tensor in `raw_input_contents`, serialised once. */
function encodeGrpc(model: string, input: InputTensor): EncodedRequest {
  const body = modelInferMethod().requestSerialize({
    model_name: model,
    inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape }],
    raw_input_contents: [rawBytes(input.values)],
  });
  return { protocol: 'grpc', body, headers: {} };
}

export function encodeRequest(protocol: Protocol, model: string, input: InputTensor): EncodedRequest {
  switch (protocol) {
    case 'json':
      return encodeJson(input);
    case 'binary':
      return encodeBinary(input);
    case 'grpc':
      return encodeGrpc(model, input);
  }
}

// ---- reading answers back (checks only) ----

/** Output name → values as numbers. */
export type Outputs = Record<string, number[]>;

/** A whole response as a client received it. */
export interface ReceivedResponse {
  body: Buffer;
  /** Inference-Header-Content-Length of a binary REST response. */
  headerLength?: number;
}

interface JsonOutput {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: { binary_data_size?: number };
}

function fromRaw(datatype: string, bytes: Uint8Array): number[] {
  // Copy first: the bytes may sit at an offset that is not a multiple of the element size.
  const copy = new Uint8Array(bytes);
  switch (datatype) {
    case 'FP32':
      return Array.from(new Float32Array(copy.buffer));
    case 'FP64':
      return Array.from(new Float64Array(copy.buffer));
    case 'INT32':
      return Array.from(new Int32Array(copy.buffer));
    case 'INT64':
      return Array.from(new BigInt64Array(copy.buffer), Number);
    default:
      throw new Error(`no raw decoder for ${datatype} in this benchmark`);
  }
}

export function decodeResponse(protocol: Protocol, response: ReceivedResponse): Outputs {
  const out: Outputs = {};
  if (protocol === 'grpc') {
    const message = modelInferMethod().responseDeserialize(response.body) as {
      outputs: Array<{ name: string; datatype: string }>;
      raw_output_contents: Buffer[];
    };
    message.outputs.forEach((o, i) => {
      out[o.name] = fromRaw(o.datatype, message.raw_output_contents[i]!);
    });
    return out;
  }
  const headerLength = protocol === 'binary' ? response.headerLength ?? response.body.byteLength : response.body.byteLength;
  const header = JSON.parse(response.body.toString('utf8', 0, headerLength)) as { outputs: JsonOutput[] };
  let offset = headerLength;
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size !== undefined) {
      out[o.name] = fromRaw(o.datatype, response.body.subarray(offset, offset + size));
      offset += size;
    } else {
      out[o.name] = (o.data ?? []).flat(Infinity).map(Number);
    }
  }
  return out;
}

/** Largest absolute difference between two answers, over every output; Infinity if they differ in shape. */
export function maxDifference(a: Outputs, b: Outputs): number {
  let worst = 0;
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[name];
    const y = b[name];
    if (x === undefined || y === undefined || x.length !== y.length) return Infinity;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}
