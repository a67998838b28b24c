/**
 * Tensor helpers shared by every front door: element counts, conversion between plain value
 * lists (JSON, protobuf typed contents) and the typed arrays tensors are held in, and checks.
 */
import { allocate, datatypeInfo, fromBfloat16Bits, fromHalfBits, toBfloat16Bits, toHalfBits, type Datatype, type TensorData } from './datatypes.js';
import { InvalidInputError } from './errors.js';
import type { Tensor } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

export function dataLength(data: TensorData): number {
  return data.length;
}

/** Checks a shape is a list of non-negative integers; `what` names the tensor in the error. */
export function checkShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape)) throw new InvalidInputError(`${what}: 'shape' must be a list of non-negative integers`);
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0) {
      throw new InvalidInputError(`${what}: 'shape' must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
  }
  return shape as number[];
}

/**
 * Converts a flat list of plain values to the typed array of `datatype`, rejecting values that
 * are not of the datatype (a string in FP32, 300 in UINT8, 1.5 in INT32...) with an error that
 * names the tensor and the position.
 */
export function fromValues(datatype: Datatype, values: ArrayLike<unknown>, what: string): TensorData {
  const n = values.length;
  const out = allocate(datatype, n);
  if (datatype === 'BYTES') {
    const list = out as Uint8Array[];
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (typeof v === 'string') list[i] = encoder.encode(v);
      else if (v instanceof Uint8Array) list[i] = v;
      else throw badValue(what, i, v, datatype);
    }
    return list;
  }
  const info = datatypeInfo(datatype);
  if (datatype === 'BOOL') {
    const arr = out as Uint8Array;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v === true || v === 1) arr[i] = 1;
      else if (v === false || v === 0) arr[i] = 0;
      else throw badValue(what, i, v, datatype);
    }
    return arr;
  }
  if (info.bigint) {
    const arr = out as BigInt64Array | BigUint64Array;
    const min = info.min as bigint;
    const max = info.max as bigint;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      let b: bigint;
      if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
      else if (typeof v === 'bigint') b = v;
      else if (typeof v === 'string' && /^-?\d+$/.test(v)) b = BigInt(v);
      else throw badValue(what, i, v, datatype);
      if (b < min || b > max) throw badValue(what, i, v, datatype);
      arr[i] = b;
    }
    return arr;
  }
  if (info.float) {
    if (datatype === 'FP16' || datatype === 'BF16') {
      const arr = out as Uint16Array;
      const convert = datatype === 'FP16' ? toHalfBits : toBfloat16Bits;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number') throw badValue(what, i, v, datatype);
        arr[i] = convert(v);
      }
      return arr;
    }
    const arr = out as Float32Array | Float64Array;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (typeof v !== 'number') {
        // JSON has no NaN/Infinity literals; accept their conventional string spellings.
        if (v === 'NaN' || v === 'nan') arr[i] = NaN;
        else if (v === 'Infinity' || v === 'inf') arr[i] = Infinity;
        else if (v === '-Infinity' || v === '-inf') arr[i] = -Infinity;
        else throw badValue(what, i, v, datatype);
      } else arr[i] = v;
    }
    return arr;
  }
  const arr = out as Uint8Array | Uint16Array | Uint32Array | Int8Array | Int16Array | Int32Array;
  const min = info.min as number;
  const max = info.max as number;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badValue(what, i, v, datatype);
    arr[i] = v;
  }
  return arr;
}

function badValue(what: string, index: number, value: unknown, datatype: Datatype): InvalidInputError {
  const shown = typeof value === 'bigint' ? `${value}` : JSON.stringify(value);
  const kind = datatype === 'BYTES' ? 'a string' : datatype === 'BOOL' ? 'a boolean' : `a valid ${datatype} number`;
  return new InvalidInputError(`${what}: element ${index} is ${shown ?? String(value)}, expected ${kind}`);
}

/**
 * Converts a tensor's data to plain values for JSON: numbers, booleans, strings.
 * INT64/UINT64 become numbers (JSON's only numeric type); BYTES become UTF-8 strings.
 */
export function toValues(datatype: Datatype, data: TensorData): Array<number | boolean | string> {
  const n = data.length;
  const out = new Array<number | boolean | string>(n);
  switch (datatype) {
    case 'BOOL': {
      const arr = data as Uint8Array;
      for (let i = 0; i < n; i++) out[i] = arr[i] !== 0;
      return out;
    }
    case 'BYTES': {
      const arr = data as Uint8Array[];
      for (let i = 0; i < n; i++) out[i] = decoder.decode(arr[i]);
      return out;
    }
    case 'FP16': {
      const arr = data as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = fromHalfBits(arr[i]!);
      return out;
    }
    case 'BF16': {
      const arr = data as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = fromBfloat16Bits(arr[i]!);
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const arr = data as BigInt64Array;
      for (let i = 0; i < n; i++) out[i] = Number(arr[i]);
      return out;
    }
    default: {
      const arr = data as Float32Array;
      for (let i = 0; i < n; i++) out[i] = arr[i]!;
      return out;
    }
  }
}

/** Checks that a tensor's data holds exactly as many elements as its shape says. */
export function checkElementCount(tensor: Tensor, what: string): void {
  const expected = elementCount(tensor.shape);
  if (tensor.data.length !== expected) {
    throw new InvalidInputError(
      `${what}: shape [${tensor.shape.join(', ')}] needs ${expected} elements but ${tensor.data.length} were given`,
    );
  }
}

/** Buffers a tensor owns, for transfer lists; BYTES data is copied by structured clone instead. */
export function transferablesOf(tensors: readonly Tensor[], into: ArrayBuffer[] = []): ArrayBuffer[] {
  for (const t of tensors) {
    if (Array.isArray(t.data)) continue;
    const view = t.data as ArrayBufferView;
    const buffer = view.buffer as ArrayBuffer;
    // Only transfer a buffer the tensor owns whole; a view into a larger body must not be detached.
    if (view.byteOffset === 0 && view.byteLength === buffer.byteLength && !into.includes(buffer)) into.push(buffer);
  }
  return into;
}

/**
 * Makes every numeric tensor own its buffer, so it can be transferred. A view into a larger
 * buffer (a request body, a gRPC message, Node's shared 8 KB Buffer pool) would otherwise be
 * structured-cloned together with that whole buffer.
 */
export function ownBuffers(tensors: Tensor[]): Tensor[] {
  for (const t of tensors) {
    if (Array.isArray(t.data)) continue;
    const view = t.data as Float32Array;
    if (view.byteOffset !== 0 || view.byteLength !== view.buffer.byteLength) t.data = view.slice() as typeof t.data;
  }
  return tensors;
}
