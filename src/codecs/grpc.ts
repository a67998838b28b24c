/**
 * Conversions between the gRPC messages of the Open Inference Protocol and the shared types.
 * Nothing here validates a request against a model: that is the data plane's job. The codec only
 * checks that a message is self-consistent (datatype known, data matching shape, one
 * representation of the data) and names the problem when it is not.
 *
 * Response data goes out as `raw_output_contents`, which the official clients read and which
 * costs no per-element work. A request whose parameters hold `typed_output_contents: true` gets
 * typed `contents` instead, for clients that cannot read raw bytes; FP16 and BF16 outputs have
 * no typed field, so such a request fails for models that produce them.
 */
import { isDatatype, type Datatype, type TensorData } from '../core/datatypes.js';
import { InvalidInputError } from '../core/errors.js';
import { elementCount, fromValues } from '../core/tensor.js';
import type {
  InferenceRequest,
  InferenceResponse,
  ModelMetadata,
  ModelStatistics,
  Parameters,
  RepositoryEntry,
  RequestedOutput,
  StatDuration,
  Tensor,
} from '../core/types.js';
import { fromRawBytes, toRawBytes } from './raw.js';
import type {
  InferInputTensorMsg,
  InferParameterMsg,
  InferTensorContentsMsg,
  Int64,
  ModelConfigMsg,
  ModelInferRequestMsg,
  ModelInferResponseMsg,
  ModelMetadataResponseMsg,
  ModelStatisticsMsg,
  ParameterMap,
  StatisticDurationMsg,
  TensorMetadataMsg,
} from './grpc-messages.js';

/** Request parameter asking for typed `contents` in the response instead of raw bytes. */
export const TYPED_OUTPUT_PARAMETER = 'typed_output_contents';

type ContentsField = keyof InferTensorContentsMsg;

const CONTENTS_FIELDS: readonly ContentsField[] = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
];

/** The typed field of each datatype; FP16 and BF16 have none and travel only as raw bytes. */
export const FIELD_OF: Readonly<Record<Datatype, ContentsField | undefined>> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
  FP16: undefined,
  BF16: undefined,
};

// ---- parameters ----

/** An int64/uint64 wire value: a number when exact, a BigInt beyond 2^53. */
function toInteger(value: Int64 | undefined): number | bigint {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : BigInt(value);
}

export function decodeParameters(map: ParameterMap | undefined, what: string): Parameters | undefined {
  if (map === undefined || map === null) return undefined;
  const keys = Object.keys(map);
  if (keys.length === 0) return undefined;
  const out: Parameters = {};
  for (const key of keys) {
    const p = map[key];
    const choice = p?.parameter_choice;
    switch (choice) {
      case 'bool_param':
        out[key] = p!.bool_param === true;
        break;
      case 'int64_param':
        out[key] = toInteger(p!.int64_param);
        break;
      case 'uint64_param':
        out[key] = toInteger(p!.uint64_param);
        break;
      case 'double_param':
        out[key] = Number(p!.double_param);
        break;
      case 'string_param':
        out[key] = String(p!.string_param ?? '');
        break;
      default:
        throw new InvalidInputError(`${what}: parameter '${key}' has no value`);
    }
  }
  return out;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function encodeParameter(value: Parameters[string]): InferParameterMsg {
  switch (typeof value) {
    case 'boolean':
      return { bool_param: value };
    case 'string':
      return { string_param: value };
    case 'bigint':
      if (value >= INT64_MIN && value <= INT64_MAX) return { int64_param: value.toString() };
      return { uint64_param: value.toString() };
    default:
      return Number.isSafeInteger(value) ? { int64_param: value } : { double_param: value };
  }
}

export function encodeParameters(parameters: Parameters | undefined): ParameterMap {
  const out: ParameterMap = {};
  if (parameters === undefined) return out;
  for (const [key, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null) out[key] = encodeParameter(value);
  }
  return out;
}

// ---- inference request ----

export interface DecodedInferRequest {
  modelName: string;
  /** Undefined when the request leaves the choice to the server. */
  modelVersion: string | undefined;
  request: InferenceRequest;
  /** The response should carry typed `contents` rather than raw bytes. */
  typedOutput: boolean;
}

export function decodeInferRequest(msg: ModelInferRequestMsg): DecodedInferRequest {
  const modelName = msg.model_name ?? '';
  if (modelName === '') throw new InvalidInputError("the request has no 'model_name'");
  const inputs = msg.inputs ?? [];
  const raw = msg.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== inputs.length) {
    throw new InvalidInputError(
      `raw_input_contents has ${raw.length} entries but the request has ${inputs.length} inputs; send one entry per input, in order`,
    );
  }
  const tensors = inputs.map((input, i) => decodeInput(input, i, raw.length > 0 ? raw[i]! : undefined));

  const parameters = decodeParameters(msg.parameters, 'request');
  let typedOutput = false;
  if (parameters !== undefined && TYPED_OUTPUT_PARAMETER in parameters) {
    typedOutput = parameters[TYPED_OUTPUT_PARAMETER] === true;
    delete parameters[TYPED_OUTPUT_PARAMETER]; // a wire concern, not the model's
  }

  const request: InferenceRequest = { inputs: tensors };
  if (msg.id !== undefined && msg.id !== '') request.id = msg.id;
  if (parameters !== undefined && Object.keys(parameters).length > 0) request.parameters = parameters;
  const outputs = msg.outputs ?? [];
  if (outputs.length > 0) {
    request.outputs = outputs.map((output, i): RequestedOutput => {
      const name = output.name ?? '';
      if (name === '') throw new InvalidInputError(`requested output ${i} has no name`);
      const requested: RequestedOutput = { name };
      const p = decodeParameters(output.parameters, `requested output '${name}'`);
      if (p !== undefined) requested.parameters = p;
      return requested;
    });
  }
  const version = msg.model_version ?? '';
  return { modelName, modelVersion: version === '' ? undefined : version, request, typedOutput };
}

function decodeInput(input: InferInputTensorMsg, index: number, raw: Uint8Array | undefined): Tensor {
  const name = input.name ?? '';
  if (name === '') throw new InvalidInputError(`input ${index} has no name`);
  const what = `input '${name}'`;
  const datatype = input.datatype ?? '';
  if (!isDatatype(datatype)) throw new InvalidInputError(`${what}: unknown datatype '${datatype}'`);
  const shape = decodeShape(input.shape ?? [], what);
  const given = CONTENTS_FIELDS.filter((field) => (input.contents?.[field]?.length ?? 0) > 0);

  let data: TensorData;
  if (raw !== undefined) {
    if (given.length > 0) {
      throw new InvalidInputError(`${what}: has both contents (${given.join(', ')}) and raw_input_contents; send its data one way only`);
    }
    data = fromRawBytes(datatype, shape, raw, what, 'raw_input_contents');
  } else {
    data = decodeContents(datatype, shape, input.contents ?? undefined, given, what);
  }
  const tensor: Tensor = { name, datatype, shape, data };
  const parameters = decodeParameters(input.parameters, what);
  if (parameters !== undefined) tensor.parameters = parameters;
  return tensor;
}

function decodeShape(dims: readonly Int64[], what: string): number[] {
  const shape = new Array<number>(dims.length);
  for (let i = 0; i < dims.length; i++) {
    const dim = Number(dims[i]);
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new InvalidInputError(`${what}: shape [${dims.join(', ')}] must hold non-negative integers`);
    }
    shape[i] = dim;
  }
  return shape;
}

function decodeContents(
  datatype: Datatype,
  shape: number[],
  contents: InferTensorContentsMsg | undefined,
  given: readonly ContentsField[],
  what: string,
): TensorData {
  const field = FIELD_OF[datatype];
  const count = elementCount(shape);
  if (field === undefined) {
    if (count === 0 && given.length === 0) return new Uint16Array(0);
    throw new InvalidInputError(`${what}: ${datatype} data must be sent in raw_input_contents (typed contents have no 16-bit float field)`);
  }
  const wrong = given.filter((f) => f !== field);
  if (wrong.length > 0) {
    throw new InvalidInputError(`${what}: ${datatype} data belongs in contents.${field}, not ${wrong.join(', ')}`);
  }
  const values = contents?.[field] ?? [];
  if (values.length !== count) {
    throw new InvalidInputError(`${what}: shape [${shape.join(', ')}] needs ${count} elements but contents.${field} holds ${values.length}`);
  }
  if (datatype === 'FP64') return Float64Array.from(values as number[]);
  // Narrow types (INT8, UINT16...) share a 32-bit field, and a message built in memory rather
  // than read off the wire can hold anything: fromValues refuses what does not fit the datatype
  // (300 in UINT8, 3.5e38 in FP32, 2^64 in INT64) instead of wrapping or saturating it. NaN and
  // Infinity in fp32_contents are values the wire format carries, and are kept.
  return fromValues(datatype, values, what);
}

// ---- inference response ----

export function encodeInferResponse(response: InferenceResponse, typedOutput = false): ModelInferResponseMsg {
  const raw: Uint8Array[] = [];
  const outputs = response.outputs.map((output) => {
    const encoded: ModelInferResponseMsg['outputs'][number] = {
      name: output.name,
      datatype: output.datatype,
      shape: output.shape,
      parameters: encodeParameters(output.parameters),
    };
    if (typedOutput) encoded.contents = encodeContents(output);
    else raw.push(toRawBytes(output.datatype, output.data));
    return encoded;
  });
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id ?? '',
    parameters: encodeParameters(response.parameters),
    outputs,
    raw_output_contents: raw,
  };
}

function encodeContents(output: Tensor): InferTensorContentsMsg {
  const field = FIELD_OF[output.datatype];
  if (field === undefined) {
    throw new InvalidInputError(
      `output '${output.name}' is ${output.datatype}, which typed contents cannot carry; leave '${TYPED_OUTPUT_PARAMETER}' unset to receive raw bytes`,
    );
  }
  const data = output.data;
  switch (output.datatype) {
    case 'BOOL':
      return { [field]: Array.from(data as Uint8Array, (v) => v !== 0) };
    case 'INT64':
    case 'UINT64':
      return { [field]: Array.from(data as BigInt64Array, (v) => v.toString()) };
    case 'BYTES':
      return { [field]: data as Uint8Array[] };
    default:
      return { [field]: Array.from(data as Float32Array) };
  }
}

// ---- metadata, configuration, statistics, repository ----

function tensorMetadata(t: { name: string; datatype: string; shape: number[] }): TensorMetadataMsg {
  return { name: t.name, datatype: t.datatype, shape: t.shape };
}

export function encodeModelMetadata(metadata: ModelMetadata): ModelMetadataResponseMsg {
  return {
    name: metadata.name,
    versions: metadata.versions,
    platform: metadata.platform,
    inputs: metadata.inputs.map(tensorMetadata),
    outputs: metadata.outputs.map(tensorMetadata),
  };
}

function configDataType(datatype: Datatype): string {
  return datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`;
}

/**
 * A Triton-style model configuration derived from the model's metadata, for tools that read one
 * (perf_analyzer, model analyzers). When the metadata's `max_batch_size` parameter is positive
 * and every tensor starts with a dynamic dimension, that dimension is the batch and is left out
 * of `dims`, as Triton does; otherwise max_batch_size is 0 and dims are the full shapes.
 */
export function encodeModelConfig(metadata: ModelMetadata): ModelConfigMsg {
  const declared = metadata.parameters?.max_batch_size;
  const maxBatch = typeof declared === 'number' || typeof declared === 'bigint' ? Number(declared) : 0;
  const tensors = [...metadata.inputs, ...metadata.outputs];
  const batched = maxBatch > 0 && tensors.length > 0 && tensors.every((t) => t.shape.length > 0 && t.shape[0] === -1);
  const dims = (shape: number[]): number[] => (batched ? shape.slice(1) : shape);
  return {
    name: metadata.name,
    platform: metadata.platform,
    backend: metadata.platform.startsWith('onnx') ? 'onnxruntime' : metadata.platform,
    max_batch_size: batched ? Math.min(maxBatch, 2 ** 31 - 1) : 0,
    input: metadata.inputs.map((t) => ({ name: t.name, data_type: configDataType(t.datatype), dims: dims(t.shape) })),
    output: metadata.outputs.map((t) => ({ name: t.name, data_type: configDataType(t.datatype), dims: dims(t.shape) })),
    model_transaction_policy: { decoupled: false },
  };
}

function duration(d: StatDuration | undefined): StatisticDurationMsg {
  return { count: d?.count ?? 0, ns: Math.round(d?.ns ?? 0) };
}

export function encodeModelStatistics(stats: ModelStatistics): ModelStatisticsMsg {
  const s = stats.inference_stats;
  return {
    name: stats.name,
    version: stats.version,
    last_inference: stats.last_inference,
    inference_count: stats.inference_count,
    execution_count: stats.execution_count,
    inference_stats: {
      success: duration(s.success),
      fail: duration(s.fail),
      queue: duration(s.queue),
      compute_input: duration(s.compute_input),
      compute_infer: duration(s.compute_infer),
      compute_output: duration(s.compute_output),
      cache_hit: duration(s.cache_hit),
      cache_miss: duration(s.cache_miss),
    },
    batch_stats: stats.batch_stats.map((b) => ({
      batch_size: b.batch_size,
      compute_input: duration(b.compute_input),
      compute_infer: duration(b.compute_infer),
      compute_output: duration(b.compute_output),
    })),
  };
}

export function encodeRepositoryIndex(entries: RepositoryEntry[]): { models: Array<Required<Omit<RepositoryEntry, 'state'>> & { state: string }> } {
  return {
    models: entries.map((e) => ({ name: e.name, version: e.version ?? '', state: e.state, reason: e.reason ?? '' })),
  };
}
