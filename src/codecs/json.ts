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

/**
 * Whether JSON.parse may have rounded a number in `value` (a number or nested lists of them):
 * every double of magnitude 2^53 or more is an integer that other literals round to as well.
 */
function mayBeRounded(value: unknown, depth: number): boolean {
  if (typeof value === 'number') return value > Number.MAX_SAFE_INTEGER || value < Number.MIN_SAFE_INTEGER;
  if (!Array.isArray(value) || depth > 64) return false;
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (typeof v === 'number') {
      if (v > Number.MAX_SAFE_INTEGER || v < Number.MIN_SAFE_INTEGER) return true;
    } else if (Array.isArray(v) && mayBeRounded(v, depth + 1)) return true;
  }
  return false;
}

function roundedParameter(holder: unknown): boolean {
  const parameters = isObject(holder) ? holder.parameters : undefined;
  if (!isObject(parameters)) return false;
  for (const key in parameters) if (mayBeRounded(parameters[key], 0)) return true;
  return false;
}

/**
 * Whether JSON.parse may have rounded a number where digits matter: the data of an INT64/UINT64
 * tensor, or a parameter of the request, its inputs or its outputs. Float data is not looked at:
 * the nearest double is its value.
 */
function roundedWhereExact(body: unknown): boolean {
  if (!isObject(body)) return false;
  if (roundedParameter(body)) return true;
  if (Array.isArray(body.outputs)) for (const t of body.outputs) if (roundedParameter(t)) return true;
  if (Array.isArray(body.inputs)) {
    for (const t of body.inputs) {
      if (roundedParameter(t)) return true;
      if (isObject(t) && (t.datatype === 'INT64' || t.datatype === 'UINT64') && mayBeRounded(t.data, 0)) return true;
    }
  }
  return false;
}

/**
 * Parses an OIP (V2) request body as JSON without losing digits where they matter: in the data
 * of INT64/UINT64 tensors and in parameters. The built-in parser reads every body; only when it
 * may have rounded an integer there (2^53 or more) is the body read again by a
 * precision-keeping parser. The common case costs a look at the 64-bit integer tensors' values.
 * `what` names the text in the error.
 */
export function parseJsonBody(body: Buffer | string, what = 'the request body'): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    return roundedWhereExact(parsed) ? parseExact(text) : parsed;
  } catch (error) {
    throw new InvalidInputError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Parses a KServe V1 body (`{"instances": ...}`): it names no datatypes, so any number of 2^53
 * or more in the instances sends it to the precision-keeping parser.
 */
export function parseV1JsonBody(body: Buffer | string): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    const instances = isObject(parsed) ? parsed.instances : undefined;
    if (!Array.isArray(instances)) return parsed;
    for (const instance of instances) {
      if (isObject(instance) ? Object.values(instance).some((v) => mayBeRounded(v, 0)) : mayBeRounded(instance, 0)) return parseExact(text);
    }
    return parsed;
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

const FROM_TEXT = { fromText: true, pooled: true } as const;

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

/**
 * Texts that open an answer and each of its outputs: the same for every answer of a model
 * version, so they are written once, not on every request. Bounded: cleared when full.
 */
const OPENINGS_LIMIT = 1024;
const answerOpenings = new Map<string, { version: string; text: string }>();
const outputOpenings = new Map<string, { datatype: string; text: string }>();

function answerOpening(name: string, version: string): string {
  const known = answerOpenings.get(name);
  if (known !== undefined && known.version === version) return known.text;
  const text = `{"model_name":${JSON.stringify(name)},"model_version":${JSON.stringify(version)}`;
  if (answerOpenings.size >= OPENINGS_LIMIT) answerOpenings.clear();
  answerOpenings.set(name, { version, text });
  return text;
}

function outputOpening(name: string, datatype: string): string {
  const known = outputOpenings.get(name);
  if (known !== undefined && known.datatype === datatype) return known.text;
  const text = `{"name":${JSON.stringify(name)},"datatype":"${datatype}","shape":[`;
  if (outputOpenings.size >= OPENINGS_LIMIT) outputOpenings.clear();
  outputOpenings.set(name, { datatype, text });
  return text;
}

/** The response body text. `skip` lists outputs sent in the binary section instead. */
export function encodeInferResponse(response: InferenceResponse, binaryOutputs?: ReadonlySet<string>): string {
  let s = answerOpening(response.model_name, response.model_version);
  if (response.id !== undefined) s += `,"id":${JSON.stringify(response.id)}`;
  if (response.parameters) s += `,"parameters":${jsonText(response.parameters)}`;
  s += ',"outputs":[';
  for (let i = 0; i < response.outputs.length; i++) {
    const t = response.outputs[i]!;
    if (i) s += ',';
    s += outputOpening(t.name, t.datatype) + t.shape.join(',') + ']';
    if (t.parameters) s += `,"parameters":${jsonText(t.parameters)}`;
    if (!binaryOutputs?.has(t.name)) s += `,"data":${dataJson(t)}`;
    s += '}';
  }
  return `${s}]}`;
}
