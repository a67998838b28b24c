/**
 * The Open Inference Protocol datatypes and the typed arrays that hold them in memory.
 *
 * One element type per datatype, chosen so that a tensor can cross to a worker thread as a
 * transferable buffer and be handed to onnxruntime without a copy:
 * - BOOL is one byte per element (Uint8Array, 0 or 1), as on the OIP binary wire.
 * - FP16 and BF16 hold raw 16-bit patterns (Uint16Array); Node 20 has no Float16Array.
 * - INT64/UINT64 are BigInt64Array/BigUint64Array.
 * - BYTES is a list of byte strings (Uint8Array[]).
 */

export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'BF16',
  'FP32',
  'FP64',
  'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

export type NumericArray =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

export type TensorData = NumericArray | Uint8Array[];

interface DatatypeInfo {
  /** Bytes per element on the binary wire; 0 for BYTES (variable). */
  readonly byteSize: number;
  readonly bigint: boolean;
  readonly float: boolean;
  /** Inclusive range for integer types, used to reject out-of-range JSON values. */
  readonly min?: number | bigint;
  readonly max?: number | bigint;
}

const INFO: Record<Datatype, DatatypeInfo> = {
  BOOL: { byteSize: 1, bigint: false, float: false, min: 0, max: 1 },
  UINT8: { byteSize: 1, bigint: false, float: false, min: 0, max: 0xff },
  UINT16: { byteSize: 2, bigint: false, float: false, min: 0, max: 0xffff },
  UINT32: { byteSize: 4, bigint: false, float: false, min: 0, max: 0xffffffff },
  UINT64: { byteSize: 8, bigint: true, float: false, min: 0n, max: 0xffffffffffffffffn },
  INT8: { byteSize: 1, bigint: false, float: false, min: -0x80, max: 0x7f },
  INT16: { byteSize: 2, bigint: false, float: false, min: -0x8000, max: 0x7fff },
  INT32: { byteSize: 4, bigint: false, float: false, min: -0x80000000, max: 0x7fffffff },
  INT64: { byteSize: 8, bigint: true, float: false, min: -0x8000000000000000n, max: 0x7fffffffffffffffn },
  FP16: { byteSize: 2, bigint: false, float: true },
  BF16: { byteSize: 2, bigint: false, float: true },
  FP32: { byteSize: 4, bigint: false, float: true },
  FP64: { byteSize: 8, bigint: false, float: true },
  BYTES: { byteSize: 0, bigint: false, float: false },
};

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && DATATYPE_SET.has(value);
}

export function datatypeInfo(datatype: Datatype): DatatypeInfo {
  return INFO[datatype];
}

/** Bytes per element on the binary wire (0 for BYTES). */
export function byteSizeOf(datatype: Datatype): number {
  return INFO[datatype].byteSize;
}

/**
 * Small numeric tensors (a request's few features) are views into a shared slab rather than
 * arrays of their own: a typed array of more than 64 bytes gets a separately allocated backing
 * store, which costs more than the decoding of its values. A view is never transferred to a
 * worker whole (`ownBuffers` copies it first), and a slab is never reused, so views stay
 * independent; one retained view keeps at most one slab (8 KiB) alive.
 */
const SLAB_BYTES = 8192;
const POOLED_MAX_BYTES = 256;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/** Like `allocate`, from the slab when the tensor is small and numeric. Zero-filled. */
export function allocatePooled(datatype: Datatype, count: number): TensorData {
  const bytes = count * INFO[datatype].byteSize;
  if (bytes === 0 || bytes > POOLED_MAX_BYTES) return allocate(datatype, count);
  if (slabUsed + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const at = slabUsed;
  slabUsed += (bytes + 7) & ~7; // every view 8-byte aligned
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(slab, at, count);
    case 'UINT16':
    case 'FP16':
    case 'BF16':
      return new Uint16Array(slab, at, count);
    case 'UINT32':
      return new Uint32Array(slab, at, count);
    case 'UINT64':
      return new BigUint64Array(slab, at, count);
    case 'INT8':
      return new Int8Array(slab, at, count);
    case 'INT16':
      return new Int16Array(slab, at, count);
    case 'INT32':
      return new Int32Array(slab, at, count);
    case 'INT64':
      return new BigInt64Array(slab, at, count);
    case 'FP32':
      return new Float32Array(slab, at, count);
    case 'FP64':
      return new Float64Array(slab, at, count);
    default:
      return allocate(datatype, count);
  }
}

/** Allocates a zeroed array able to hold `count` elements of `datatype`. */
export function allocate(datatype: Datatype, count: number): TensorData {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(count);
    case 'UINT16':
    case 'FP16':
    case 'BF16':
      return new Uint16Array(count);
    case 'UINT32':
      return new Uint32Array(count);
    case 'UINT64':
      return new BigUint64Array(count);
    case 'INT8':
      return new Int8Array(count);
    case 'INT16':
      return new Int16Array(count);
    case 'INT32':
      return new Int32Array(count);
    case 'INT64':
      return new BigInt64Array(count);
    case 'FP32':
      return new Float32Array(count);
    case 'FP64':
      return new Float64Array(count);
    case 'BYTES':
      return new Array<Uint8Array>(count).fill(new Uint8Array(0));
  }
}

/**
 * Views `bytes` (little-endian, as on the OIP binary wire) as the typed array of `datatype`.
 * Copies only when the bytes are not aligned for the element size.
 */
export function fromBytes(datatype: Datatype, bytes: Uint8Array): NumericArray {
  const size = INFO[datatype].byteSize;
  if (datatype === 'BYTES') throw new TypeError('BYTES has no fixed-size view');
  let buffer = bytes.buffer;
  let offset = bytes.byteOffset;
  if (offset % size !== 0) {
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    buffer = copy.buffer;
    offset = 0;
  }
  const length = bytes.byteLength / size;
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(buffer, offset, length);
    case 'UINT16':
    case 'FP16':
    case 'BF16':
      return new Uint16Array(buffer, offset, length);
    case 'UINT32':
      return new Uint32Array(buffer, offset, length);
    case 'UINT64':
      return new BigUint64Array(buffer, offset, length);
    case 'INT8':
      return new Int8Array(buffer, offset, length);
    case 'INT16':
      return new Int16Array(buffer, offset, length);
    case 'INT32':
      return new Int32Array(buffer, offset, length);
    case 'INT64':
      return new BigInt64Array(buffer, offset, length);
    case 'FP32':
      return new Float32Array(buffer, offset, length);
    case 'FP64':
      return new Float64Array(buffer, offset, length);
  }
}

// ---- half-precision conversions (IEEE 754 binary16 and bfloat16) ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds a number to the nearest binary16 bit pattern (round half to even). */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf or NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow to Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds a number to the nearest bfloat16 bit pattern (round half to even). */
export function toBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40; // keep NaN a NaN
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function fromBfloat16Bits(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/**
 * The element a number is stored as in an array of `datatype`: the half-precision bit pattern
 * for FP16/BF16, a BigInt for INT64/UINT64, the number itself otherwise. Undefined when the
 * number does not fit (out of an integer type's range, not an integer for one, or a finite
 * number that would become infinite). BYTES has no numeric element.
 */
export function numericElement(datatype: Datatype, value: number): number | bigint | undefined {
  if (Number.isNaN(value) && !INFO[datatype].float) return undefined;
  switch (datatype) {
    case 'BYTES':
      return undefined;
    case 'FP16': {
      const bits = toHalfBits(value);
      return Number.isFinite(value) && (bits & 0x7fff) >= 0x7c00 ? undefined : bits;
    }
    case 'BF16': {
      const bits = toBfloat16Bits(value);
      return Number.isFinite(value) && (bits & 0x7fff) >= 0x7f80 ? undefined : bits;
    }
    case 'FP32':
      return Number.isFinite(value) && !Number.isFinite(Math.fround(value)) ? undefined : value;
    case 'FP64':
      return value;
    default: {
      const info = INFO[datatype];
      if (!Number.isInteger(value)) return undefined;
      if (info.bigint) {
        const b = BigInt(value);
        return b < (info.min as bigint) || b > (info.max as bigint) ? undefined : b;
      }
      return value < (info.min as number) || value > (info.max as number) ? undefined : value;
    }
  }
}
