/**
 * Tensor helpers shared by every front door: element counts, conversion between plain value
 * lists (JSON, protobuf typed contents) and the typed arrays tensors are held in, and checks.
 */
import { allocate, allocatePooled, datatypeInfo, fromBfloat16Bits, fromHalfBits, toBfloat16Bits, toHalfBits, type Datatype, type TensorData } from './datatypes.js';
import { stringify as stringifyExact } from 'lossless-json';
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
      throw new InvalidInputError(`${what}: 'shape' must be a list of non-negative integers, got ${showValue(shape)}`);
    }
  }
  return shape as number[];
}

export interface ValueOptions {
  /**
   * The numbers were read from JSON text, where NaN and Infinity have no literal: a non-finite
   * number there is a literal beyond the FP64 range (1e309), and is refused like any overflow.
   * Other sources (a JavaScript model's outputs) may hold NaN and Infinity on purpose.
   */
  readonly fromText?: boolean;
  /** A small result may be a view into a shared slab (`allocatePooled`) rather than own its buffer. */
  readonly pooled?: boolean;
}

/**
 * Converts a flat list of plain values to the typed array of `datatype`, refusing values that
 * are not of the datatype (a string in FP32, 300 in UINT8, 1.5 in INT32, 70000 in FP16, 3.5e38
 * in FP32...) with an error that names the tensor, the position and the value. Nothing is
 * saturated or rounded to an integer. INT64/UINT64 take numbers, BigInts and decimal strings,
 * exactly; the float types take the strings "NaN", "Infinity" and "-Infinity" as explicit
 * non-finite values. One pass, checking while converting.
 */
export function fromValues(datatype: Datatype, values: ArrayLike<unknown>, what: string, options?: ValueOptions): TensorData {
  const n = values.length;
  const out = options?.pooled === true ? allocatePooled(datatype, n) : allocate(datatype, n);
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
  const strict = options?.fromText === true;
  if (info.bigint) {
    const arr = out as BigInt64Array | BigUint64Array;
    const min = info.min as bigint;
    const max = info.max as bigint;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      let b: bigint;
      if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
      else if (typeof v === 'bigint') b = v;
      else if (typeof v === 'string' && DECIMAL.test(v)) b = BigInt(v);
      else throw badValue(what, i, v, datatype);
      if (b < min || b > max) throw outOfRange(what, i, v, datatype);
      arr[i] = b;
    }
    return arr;
  }
  if (info.float) {
    if (datatype === 'FP16' || datatype === 'BF16') {
      const arr = out as Uint16Array;
      const convert = datatype === 'FP16' ? toHalfBits : toBfloat16Bits;
      const infinity = datatype === 'FP16' ? 0x7c00 : 0x7f80;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        const x = typeof v === 'number' ? v : floatOf(v, what, i, datatype);
        const bits = convert(x);
        // A finite number that becomes infinite does not fit; an explicit non-finite value does.
        if ((bits & 0x7fff) >= infinity && x - x === 0) throw outOfRange(what, i, v, datatype);
        if (strict && typeof v === 'number' && x - x !== 0) throw outOfRange(what, i, v, datatype);
        arr[i] = bits;
      }
      return arr;
    }
    const arr = out as Float32Array | Float64Array;
    // Magnitudes from which a number rounds to an infinite element (ties go to even: infinity).
    const limit = datatype === 'FP32' ? FP32_OVERFLOW : Infinity;
    let i = 0;
    while ((i = fillFloats(arr, values, i, limit, strict)) < n) {
      // Not a plain finite number that fits: an explicit non-finite spelling, a BigInt, or a refusal.
      const v = values[i];
      if (typeof v === 'number') throw outOfRange(what, i, v, datatype);
      const x = floatOf(v, what, i, datatype);
      arr[i] = x;
      if (x - x === 0 && arr[i]! - arr[i]! !== 0) throw outOfRange(what, i, v, datatype);
      i++;
    }
    return arr;
  }
  const arr = out as Uint8Array | Uint16Array | Uint32Array | Int8Array | Int16Array | Int32Array;
  const min = info.min as number;
  const max = info.max as number;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw typeof v === 'bigint' ? outOfRange(what, i, v, datatype) : badValue(what, i, v, datatype);
    if (v < min || v > max) throw outOfRange(what, i, v, datatype);
    arr[i] = v;
  }
  return arr;
}

/**
 * The hot loop of float conversion, kept small so that it optimises well: stores numbers from
 * `from` on, and stops at the first element that is not a number or does not fit (an infinite
 * number is kept unless `strict`). Returns where it stopped: values.length when done.
 */
function fillFloats(arr: Float32Array | Float64Array, values: ArrayLike<unknown>, from: number, limit: number, strict: boolean): number {
  const n = values.length;
  for (let i = from; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number') return i;
    if ((v >= limit || v <= -limit) && (v - v === 0 || strict)) return i;
    arr[i] = v;
  }
  return n;
}

const DECIMAL = /^-?\d+$/;
/** 2^128 - 2^103: halfway between the largest finite FP32 and 2^128. */
const FP32_OVERFLOW = 3.4028235677973366e38;

/** A float element given as something other than a number: an explicit non-finite spelling or a BigInt. */
function floatOf(v: unknown, what: string, index: number, datatype: Datatype): number {
  switch (v) {
    case 'NaN':
    case 'nan':
      return NaN;
    case 'Infinity':
    case 'inf':
      return Infinity;
    case '-Infinity':
    case '-inf':
      return -Infinity;
  }
  // An integer literal too long for a double's exact range arrives as a BigInt.
  if (typeof v === 'bigint') {
    const x = Number(v);
    if (x - x !== 0) throw outOfRange(what, index, v, datatype);
    return x;
  }
  throw badValue(what, index, v, datatype);
}

/** How a value is shown in an error: exactly as sent (a BigInt's digits, a string quoted). */
export function showValue(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return value === Infinity || value === -Infinity ? `${value} (a number beyond the FP64 range)` : String(value);
  if (value === undefined) return 'missing';
  try {
    const text = stringifyExact(value) ?? String(value);
    return text.length > 64 ? `${text.slice(0, 61)}...` : text;
  } catch {
    return String(value);
  }
}

function badValue(what: string, index: number, value: unknown, datatype: Datatype): InvalidInputError {
  if (typeof value === 'number' && !Number.isInteger(value) && !datatypeInfo(datatype).float && datatype !== 'BOOL' && Number.isFinite(value)) {
    return new InvalidInputError(`${what}: element ${index} is ${showValue(value)}, not an integer; ${datatype} holds integers only`);
  }
  const kind = datatype === 'BYTES' ? 'a string' : datatype === 'BOOL' ? 'a boolean' : `a valid ${datatype} number`;
  return new InvalidInputError(`${what}: element ${index} is ${showValue(value)}, expected ${kind}`);
}

function outOfRange(what: string, index: number, value: unknown, datatype: Datatype): InvalidInputError {
  const info = datatypeInfo(datatype);
  const range = info.float ? `the finite ${datatype} range (±${MAX_FINITE[datatype]})` : `the ${datatype} range [${info.min}, ${info.max}]`;
  return new InvalidInputError(`${what}: element ${index} is ${showValue(value)}, outside ${range}`);
}

const MAX_FINITE: Partial<Record<Datatype, string>> = {
  FP16: '65504',
  BF16: '3.3895e38',
  FP32: '3.4028235e38',
  FP64: '1.7976931348623157e308',
};

/**
 * Converts a tensor's data to plain values: numbers, booleans, strings, and BigInts for
 * INT64/UINT64 so that no digit is lost (JSON writers put them out as exact integers).
 * BYTES become UTF-8 strings.
 */
export function toValues(datatype: Datatype, data: TensorData): Array<number | boolean | string | bigint> {
  const n = data.length;
  const out = new Array<number | boolean | string | bigint>(n);
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

/**
 * Memory that belongs to one tensor alone although the tensor views only part of it (a binary
 * request body read into a buffer of its own, header bytes first): sent to the worker whole,
 * rather than the tensor's bytes copied out of it. Nothing reads a request's tensors after they
 * are sent (copies that must outlive the hand-off are made before it, as for buffers owned whole).
 */
const lent = new WeakSet<ArrayBuffer>();

/** Marks `memory` as the buffer of one tensor alone; only for memory no other view will read. */
export function lendToWorker(memory: ArrayBuffer): void {
  lent.add(memory);
}

/** Buffers a tensor owns, for transfer lists; BYTES data is copied by structured clone instead. */
export function transferablesOf(tensors: readonly Tensor[], into: ArrayBuffer[] = []): ArrayBuffer[] {
  for (const t of tensors) {
    if (Array.isArray(t.data)) continue;
    const view = t.data as ArrayBufferView;
    const buffer = view.buffer as ArrayBuffer;
    // Only transfer a buffer the tensor owns whole, or lent to it; a view into a larger body must
    // not be detached.
    const owned = (view.byteOffset === 0 && view.byteLength === buffer.byteLength) || lent.has(buffer);
    if (owned && !into.includes(buffer)) into.push(buffer);
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
    if (lent.has(view.buffer as ArrayBuffer)) continue;
    if (view.byteOffset !== 0 || view.byteLength !== view.buffer.byteLength) t.data = view.slice() as typeof t.data;
  }
  return tensors;
}

type NumericView = Exclude<Tensor['data'], Uint8Array[]>;
type ViewConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => NumericView;

/** Largest buffer a tensor owns whole that packTensors still copies rather than transfers. */
const PACK_OWNED_MAX_BYTES = 64 * 1024;

/**
 * Copies the numeric data of many small tensors into one fresh buffer and points each tensor at
 * its part; returns that buffer (undefined when there was nothing to copy). A hand-off of
 * several runs then transfers one buffer instead of one per tensor: each transferred buffer
 * costs an allocation and a detach on one side and a new buffer object on the other. Left as
 * they are, for transferablesOf: lent buffers (see lendSoleTensor) and large buffers a tensor
 * owns whole (moving those costs no copy); BYTES data is cloned anyway.
 */
export function packTensors(groups: readonly (readonly Tensor[])[]): ArrayBuffer | undefined {
  let bytes = 0;
  for (const tensors of groups) {
    for (const t of tensors) {
      if (!packable(t)) continue;
      // 8-byte aligned parts: a Float64Array or BigInt64Array view needs it.
      bytes = align8(bytes) + (t.data as NumericView).byteLength;
    }
  }
  if (bytes === 0) return undefined;
  const memory = new ArrayBuffer(bytes);
  const target = new Uint8Array(memory);
  let offset = 0;
  for (const tensors of groups) {
    for (const t of tensors) {
      if (!packable(t)) continue;
      const view = t.data as NumericView;
      offset = align8(offset);
      target.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), offset);
      t.data = new (view.constructor as ViewConstructor)(memory, offset, view.length);
      offset += view.byteLength;
    }
  }
  return memory;
}

function packable(t: Tensor): boolean {
  if (Array.isArray(t.data)) return false;
  const view = t.data as NumericView;
  const buffer = view.buffer as ArrayBuffer;
  if (lent.has(buffer)) return false;
  const ownsWhole = view.byteOffset === 0 && view.byteLength === buffer.byteLength;
  return !ownsWhole || view.byteLength <= PACK_OWNED_MAX_BYTES;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
