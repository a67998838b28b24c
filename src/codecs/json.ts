/**
 * The OIP JSON wire format ↔ the shared tensor types. Decoding validates everything a client
 * can get wrong and names the tensor and the problem; encoding writes the response text
 * directly, since generic serialisation of large numeric arrays is the hot spot of REST serving.
 */
import { parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import { isDatatype } from '../core/datatypes.js';
import { InvalidInputError } from '../core/errors.js';
import { checkElementCount, checkShape, fromValues, showValue, toValues } from '../core/tensor.js';
import type { InferenceRequest, InferenceResponse, Parameters, RequestedOutput, Tensor } from '../core/types.js';

type Json = Record<string, unknown>;

/**
 * An integer literal of 16 or more digits: the only kind of JSON number JSON.parse can round
 * (2^53 has 16 digits). The character before it must be one that can precede a JSON value, so
 * the long fractions of ordinary floats ("0.30000000000000004") do not match.
 */
const LONG_INTEGER = /[^\d.eE+]-?\d{16}/;
const INTEGER_LITERAL = /^-?\d+$/;

/** Numbers as JSON.parse reads them, except integers beyond 2^53, which become exact BigInts. */
function exactNumber(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) || !INTEGER_LITERAL.test(text) ? n : BigInt(text);
}

function parseExact(text: string): unknown {
  // Duplicate keys: the last wins, as with JSON.parse.
  return parseLossless(text, null, { parseNumber: exactNumber, onDuplicateKey: ({ newValue }) => newValue });
}

/** A number JSON.parse may have rounded: an integer beyond 2^53. */
function rounded(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value);
}

function roundedParameter(holder: unknown): boolean {
  const parameters = isObject(holder) ? holder.parameters : undefined;
  if (!isObject(parameters)) return false;
  for (const key in parameters) if (rounded(parameters[key])) return true;
  return false;
}

/** Whether JSON.parse may have rounded a parameter of the request, its inputs or its outputs. */
function roundedParameters(body: unknown): boolean {
  if (!isObject(body)) return false;
  if (roundedParameter(body)) return true;
  for (const list of [body.inputs, body.outputs]) {
    if (Array.isArray(list)) for (const t of list) if (roundedParameter(t)) return true;
  }
  return false;
}

/**
 * Parses an OIP (V2) request body as JSON without losing digits where they matter: in the data
 * of INT64/UINT64 tensors and in parameters. Only bodies that hold a long integer literal there
 * are read by the precision-keeping parser; everything else by the built-in one, at its usual
 * speed (a float tensor's body is not even scanned: JSON.parse's nearest double is the value).
 * `what` names the text in the error.
 */
export function parseJsonBody(body: Buffer | string, what = 'the request body'): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  try {
    // 'INT64' also finds 'UINT64'.
    if (text.includes('INT64') && LONG_INTEGER.test(text)) return parseExact(text);
    const parsed: unknown = JSON.parse(text);
    return roundedParameters(parsed) ? parseExact(text) : parsed;
  } catch (error) {
    throw new InvalidInputError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Parses a KServe V1 body (`{"instances": ...}`): it names no datatypes, so any long integer
 * literal sends it to the precision-keeping parser.
 */
export function parseV1JsonBody(body: Buffer | string): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  try {
    return LONG_INTEGER.test(text) ? parseExact(text) : JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** JSON text of a small value (parameters) with BigInts written as exact integers. */
export function jsonText(value: unknown): string {
  return stringifyLossless(value) ?? 'null';
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseParameters(value: unknown, what: string): Parameters | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw new InvalidInputError(`${what}: 'parameters' must be an object`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'bigint') {
      throw new InvalidInputError(`${what}: parameter '${k}' must be a string, number or boolean`);
    }
  }
  return value as Parameters;
}

/**
 * The data of a tensor as one flat row-major list. Flat data is taken as it is (its count is
 * checked against the shape afterwards); nested data must be nested exactly as the shape says,
 * every list as long as its dimension, so [[1, 2], [3, 4, 5, 6]] is not a [2, 3] tensor.
 */
function flatten(data: unknown[], shape: readonly number[], what: string): unknown[] {
  let nested = false;
  for (let i = 0; i < data.length; i++) {
    if (Array.isArray(data[i])) {
      nested = true;
      break;
    }
  }
  if (!nested) return data;
  const out: unknown[] = [];
  const at: number[] = [];
  const problem = walkNested(data, 0, shape, out, at);
  if (problem !== undefined) {
    const path = at.map((i) => `[${i}]`).join('');
    throw new InvalidInputError(`${what}: data${path} ${problem.replace('SHAPE', `shape [${shape.join(', ')}]`)}`);
  }
  return out;
}

/**
 * Appends the leaves of `list` (at `depth` of `shape`) to `out`. On a mismatch returns what is
 * wrong, with `at` holding the indices down to the offending place; undefined when all is well.
 */
function walkNested(list: unknown[], depth: number, shape: readonly number[], out: unknown[], at: number[]): string | undefined {
  if (depth >= shape.length) return 'is a list, but SHAPE has no dimension left for it';
  if (list.length !== shape[depth]) return `holds ${list.length} elements, but dimension ${depth} of SHAPE is ${shape[depth]}`;
  if (depth === shape.length - 1) {
    for (let i = 0; i < list.length; i++) {
      const v = list[i];
      if (Array.isArray(v)) {
        at.push(i);
        return 'is a list, but SHAPE expects a value there';
      }
      out.push(v);
    }
    return undefined;
  }
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    at.push(i);
    if (!Array.isArray(v)) return `is a value, but SHAPE expects a list of ${shape[depth + 1]} there`;
    const problem = walkNested(v, depth + 1, shape, out, at);
    if (problem !== undefined) return problem;
    at.pop();
  }
  return undefined;
}

const FROM_TEXT = { fromText: true } as const;

export function decodeTensor(raw: unknown, position: number): Tensor {
  if (!isObject(raw)) throw new InvalidInputError(`inputs[${position}] must be an object with name, datatype, shape and data`);
  const name = raw.name;
  if (typeof name !== 'string' || name.length === 0) throw new InvalidInputError(`inputs[${position}]: 'name' must be a non-empty string`);
  const what = `input '${name}'`;
  const datatype = raw.datatype;
  if (!isDatatype(datatype)) throw new InvalidInputError(`${what}: unknown datatype ${showValue(datatype)}`);
  const shape = checkShape(raw.shape, what);
  const parameters = parseParameters(raw.parameters, what);
  if (raw.data === undefined) {
    throw new InvalidInputError(`${what}: 'data' is missing`);
  }
  let values = raw.data;
  if (!Array.isArray(values)) {
    // A scalar is allowed for a tensor of one element.
    values = [values];
  }
  const flat = flatten(values as unknown[], shape, what);
  const tensor: Tensor = { name, datatype, shape, data: fromValues(datatype, flat, what, FROM_TEXT) };
  if (parameters) tensor.parameters = parameters;
  checkElementCount(tensor, what);
  return tensor;
}

export function decodeInferRequest(body: unknown, decodeInput: (raw: unknown, position: number) => Tensor = decodeTensor): InferenceRequest {
  if (!isObject(body)) throw new InvalidInputError('the request body must be a JSON object with an \'inputs\' list');
  const inputs = body.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) throw new InvalidInputError("'inputs' must be a non-empty list of tensors");
  const request: InferenceRequest = { inputs: inputs.map((t, i) => decodeInput(t, i)) };
  if (body.id !== undefined) {
    if (typeof body.id !== 'string') throw new InvalidInputError("'id' must be a string");
    request.id = body.id;
  }
  const parameters = parseParameters(body.parameters, 'request');
  if (parameters) request.parameters = parameters;
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) throw new InvalidInputError("'outputs' must be a list of {\"name\": ...} objects");
    request.outputs = body.outputs.map((o: unknown, i: number): RequestedOutput => {
      if (!isObject(o) || typeof o.name !== 'string') throw new InvalidInputError(`outputs[${i}] must be an object with a 'name'`);
      const p = parseParameters(o.parameters, `output '${o.name}'`);
      return p ? { name: o.name, parameters: p } : { name: o.name };
    });
  }
  return request;
}

const utf8 = new TextDecoder();

/** JSON text of a tensor's data, flat and row-major. Non-finite floats become strings ("NaN"). */
export function dataJson(t: Tensor): string {
  const d = t.data;
  switch (t.datatype) {
    case 'FP32':
    case 'FP64': {
      const arr = d as Float32Array;
      for (let i = 0; i < arr.length; i++) {
        if (!Number.isFinite(arr[i]!)) return JSON.stringify(Array.from(arr, (x) => (Number.isFinite(x) ? x : String(x))));
      }
      return `[${arr.join(',')}]`;
    }
    case 'BOOL': {
      const arr = d as Uint8Array;
      let s = '[';
      for (let i = 0; i < arr.length; i++) s += (i ? ',' : '') + (arr[i] ? 'true' : 'false');
      return `${s}]`;
    }
    case 'BYTES':
      return JSON.stringify((d as Uint8Array[]).map((b) => utf8.decode(b)));
    case 'FP16':
    case 'BF16':
      return JSON.stringify(fromValuesToNumbers(t));
    default:
      return `[${(d as Int32Array).join(',')}]`;
  }
}

function fromValuesToNumbers(t: Tensor): unknown[] {
  return toValues(t.datatype, t.data).map((x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x));
}

/** The response body text. `skip` lists outputs sent in the binary section instead. */
export function encodeInferResponse(response: InferenceResponse, binaryOutputs?: ReadonlySet<string>): string {
  let s = `{"model_name":${JSON.stringify(response.model_name)},"model_version":${JSON.stringify(response.model_version)}`;
  if (response.id !== undefined) s += `,"id":${JSON.stringify(response.id)}`;
  if (response.parameters) s += `,"parameters":${jsonText(response.parameters)}`;
  s += ',"outputs":[';
  for (let i = 0; i < response.outputs.length; i++) {
    const t = response.outputs[i]!;
    if (i) s += ',';
    s += `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`;
    if (t.parameters) s += `,"parameters":${jsonText(t.parameters)}`;
    if (!binaryOutputs?.has(t.name)) s += `,"data":${dataJson(t)}`;
    s += '}';
  }
  return `${s}]}`;
}
