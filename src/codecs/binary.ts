/**
 * The binary tensor data extension of the HTTP/REST protocol, as pure functions the REST door
 * calls: a body is a JSON header of `Inference-Header-Content-Length` bytes followed by the raw
 * bytes of every input (or output) whose `parameters.binary_data_size` is set, in order.
 *
 * Typical use in a request handler:
 *
 *   const { header, binary } = parseBinaryRequest(body, headers['inference-header-content-length']);
 *   const binaryData = attachBinaryInputs(header.inputs, binary); // TensorData | undefined per input
 *   ... decode the request, taking binaryData[i] in place of input i's JSON `data` when set ...
 *   const selection = binaryOutputSelection(header);
 *   if (selection === 'all' || selection.size > 0) {
 *     const { body, headerLength } = encodeBinaryResponse(response, selection);
 *     reply.header(INFERENCE_HEADER_CONTENT_LENGTH, headerLength).type(BINARY_CONTENT_TYPE).send(body);
 *   }
 */
import { allocate, isDatatype, type Datatype, type TensorData } from '../core/datatypes.js';
import { InvalidInputError } from '../core/errors.js';
import { checkShape, fromValues, showValue } from '../core/tensor.js';
import type { Parameters } from '../core/types.js';
import { dataJson, jsonText, parseJsonBody } from './json.js';
import { fromRawBytes, rawByteLength, toRawBytes } from './raw.js';

/** Header naming the length of the JSON part of a binary body (lower case, as Node presents headers). */
export const INFERENCE_HEADER_CONTENT_LENGTH = 'inference-header-content-length';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';
/** Input/output parameter: byte size of the tensor's binary data. */
export const BINARY_DATA_SIZE = 'binary_data_size';
/** Requested-output parameter: return this output as binary data. */
export const BINARY_DATA = 'binary_data';
/** Request parameter: the default of `binary_data` for every output. */
export const BINARY_DATA_OUTPUT = 'binary_data_output';

export interface BinaryRequest {
  /** The JSON part, parsed; the caller validates its structure. */
  header: unknown;
  /** The bytes after the JSON part (a view of the body, not a copy); empty for a plain JSON body. */
  binary: Buffer;
}

/**
 * Splits a request body into its JSON header and binary section. Without the header-length header
 * the whole body is JSON.
 */
export function parseBinaryRequest(body: Buffer, headerContentLength: string | number | readonly string[] | undefined): BinaryRequest {
  let jsonLength = body.byteLength;
  if (headerContentLength !== undefined) {
    const raw = Array.isArray(headerContentLength) ? headerContentLength[0] : headerContentLength;
    const text = String(raw).trim();
    if (!/^\d+$/.test(text)) {
      throw new InvalidInputError(`Inference-Header-Content-Length must be a non-negative integer, got '${text}'`);
    }
    jsonLength = Number(text);
    if (jsonLength > body.byteLength) {
      throw new InvalidInputError(
        `Inference-Header-Content-Length is ${jsonLength} but the request body holds only ${body.byteLength} bytes`,
      );
    }
  }
  // Parsed as the JSON body is, so integers beyond 2^53 keep every digit.
  const header = parseJsonBody(body.toString('utf8', 0, jsonLength), "the request's JSON header");
  return { header, binary: body.subarray(jsonLength) };
}

/**
 * For every input whose `parameters.binary_data_size` is set, takes its bytes from `binary` (in
 * input order) and decodes them to the tensor's typed array. Returns one entry per input: the
 * decoded data, or undefined for inputs carried in JSON. Checks each size against shape and
 * datatype, and that the sizes account for the binary section exactly.
 */
export function attachBinaryInputs(inputs: unknown, binary: Uint8Array): Array<TensorData | undefined> {
  if (!Array.isArray(inputs)) {
    if (binary.byteLength > 0) throw new InvalidInputError(`the request has ${binary.byteLength} bytes of binary data but no 'inputs' list`);
    return [];
  }
  const out = new Array<TensorData | undefined>(inputs.length);
  let offset = 0;
  for (let i = 0; i < inputs.length; i++) {
    const input: unknown = inputs[i];
    if (typeof input !== 'object' || input === null) {
      out[i] = undefined;
      continue; // not a tensor: the request decoder reports it with the rest of the JSON
    }
    const record = input as Record<string, unknown>;
    const size = binaryDataSize(record.parameters);
    if (size === undefined) {
      out[i] = undefined;
      continue;
    }
    const what = `input '${typeof record.name === 'string' ? record.name : i}'`;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new InvalidInputError(`${what}: '${BINARY_DATA_SIZE}' must be a non-negative integer, got ${showValue(size)}`);
    }
    if (record.data !== undefined) {
      throw new InvalidInputError(`${what}: has both 'data' and '${BINARY_DATA_SIZE}'; send its data one way only`);
    }
    if (!isDatatype(record.datatype)) {
      throw new InvalidInputError(`${what}: unknown datatype ${showValue(record.datatype)}`);
    }
    const shape = checkShape(record.shape, what);
    if (offset + size > binary.byteLength) {
      throw new InvalidInputError(
        `${what}: '${BINARY_DATA_SIZE}' is ${size} but only ${binary.byteLength - offset} bytes of binary data remain`,
      );
    }
    out[i] = fromRawBytes(record.datatype, shape, binary.subarray(offset, offset + size), what, 'the binary data');
    offset += size;
  }
  if (offset !== binary.byteLength) {
    throw new InvalidInputError(
      `the request has ${binary.byteLength} bytes of binary data but its inputs' '${BINARY_DATA_SIZE}' add up to ${offset}`,
    );
  }
  return out;
}

function binaryDataSize(parameters: unknown): unknown {
  if (typeof parameters !== 'object' || parameters === null) return undefined;
  const value = (parameters as Record<string, unknown>)[BINARY_DATA_SIZE];
  return value === null ? undefined : value;
}

/**
 * Which outputs a request wants as binary data, with Triton's semantics: the request parameter
 * `binary_data_output` is the default, and a requested output's `binary_data` overrides it. With
 * no requested outputs the default applies to every output ('all' or none).
 */
export function binaryOutputSelection(request: unknown): Set<string> | 'all' {
  const record = typeof request === 'object' && request !== null ? (request as Record<string, unknown>) : {};
  const defaultBinary = flag(record.parameters, BINARY_DATA_OUTPUT) ?? false;
  const requested = Array.isArray(record.outputs) ? (record.outputs as unknown[]) : [];
  if (requested.length === 0) return defaultBinary ? 'all' : new Set();
  const names = new Set<string>();
  for (const output of requested) {
    if (typeof output !== 'object' || output === null) continue;
    const o = output as Record<string, unknown>;
    if (typeof o.name === 'string' && (flag(o.parameters, BINARY_DATA) ?? defaultBinary)) names.add(o.name);
  }
  return names;
}

function flag(parameters: unknown, key: string): boolean | undefined {
  if (typeof parameters !== 'object' || parameters === null) return undefined;
  const value = (parameters as Record<string, unknown>)[key];
  return typeof value === 'boolean' ? value : undefined;
}

/** An output as the REST door holds it: typed data from the data plane, or plain JSON values. */
export interface ResponseOutputLike {
  name: string;
  datatype: Datatype | string;
  shape: readonly number[];
  parameters?: Record<string, unknown>;
  data?: TensorData | readonly unknown[];
}

export interface InferenceResponseLike {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters | Record<string, unknown>;
  outputs: readonly ResponseOutputLike[];
}

export interface BinaryResponse {
  body: Buffer;
  /** Length of the JSON header: the value of `Inference-Header-Content-Length`. */
  headerLength: number;
}

/**
 * Encodes a response with the selected outputs as binary data after the JSON header (each with
 * `parameters.binary_data_size` and no `data`) and the others as JSON values, written as the JSON
 * answer writes them: INT64/UINT64 as exact integers, NaN and Infinity as strings.
 */
export function encodeBinaryResponse(response: InferenceResponseLike, outputsAsBinary: Set<string> | 'all'): BinaryResponse {
  const chunks: Buffer[] = [];
  let head = `{"model_name":${JSON.stringify(response.model_name)}`;
  if (response.model_version !== undefined) head += `,"model_version":${JSON.stringify(response.model_version)}`;
  if (response.id !== undefined) head += `,"id":${JSON.stringify(response.id)}`;
  if (response.parameters !== undefined) head += `,"parameters":${jsonText(response.parameters)}`;
  head += ',"outputs":[';
  response.outputs.forEach((output, i) => {
    const datatype = output.datatype;
    if (!isDatatype(datatype)) throw new TypeError(`output '${output.name}' has unknown datatype '${datatype}'`);
    const data = toTensorData(datatype, output.data ?? [], `output '${output.name}'`);
    if (i > 0) head += ',';
    head += `{"name":${JSON.stringify(output.name)},"datatype":"${datatype}","shape":[${output.shape.join(',')}]`;
    if (outputsAsBinary === 'all' || outputsAsBinary.has(output.name)) {
      const bytes = toRawBytes(datatype, data);
      chunks.push(bytes);
      head += `,"parameters":${jsonText({ ...output.parameters, [BINARY_DATA_SIZE]: bytes.byteLength })}}`;
      return;
    }
    if (output.parameters !== undefined) head += `,"parameters":${jsonText(output.parameters)}`;
    head += `,"data":${dataJson({ name: output.name, datatype, shape: [...output.shape], data })}}`;
  });
  head += ']}';
  const header = Buffer.from(head, 'utf8');
  return { body: Buffer.concat([header, ...chunks]), headerLength: header.byteLength };
}

function toTensorData(datatype: Datatype, data: TensorData | readonly unknown[], what: string): TensorData {
  if (ArrayBuffer.isView(data)) return data as TensorData;
  if (data.length === 0) return allocate(datatype, 0);
  if (datatype === 'BYTES' && data.every((element) => element instanceof Uint8Array)) return data as Uint8Array[];
  // Plain JSON values, possibly nested as OIP allows.
  return fromValues(datatype, data.flat(Infinity), what);
}

export { rawByteLength, toRawBytes, fromRawBytes };
