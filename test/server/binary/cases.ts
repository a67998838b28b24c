/**
 * One tensor of every datatype, as typed contents (the gRPC field and values a client sends) and
 * as raw little-endian bytes, with the values a decoder must produce. Shared by the gRPC and HTTP
 * binary codec tests.
 */
import { toBfloat16Bits, toHalfBits, type Datatype } from '../../../src/core/datatypes.js';
import type { InferTensorContentsMsg } from '../../../src/codecs/grpc-messages.js';

export const le = (view: ArrayBufferView): Buffer => Buffer.from(view.buffer, view.byteOffset, view.byteLength);

export function bytesRaw(elements: Uint8Array[]): Buffer {
  return Buffer.concat(
    elements.flatMap((e) => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(e.byteLength);
      return [length, Buffer.from(e)];
    }),
  );
}

/** One case per datatype: typed contents as a client sends them, and the same values raw. */
export const CASES: Array<{ datatype: Datatype; field?: keyof InferTensorContentsMsg; values?: unknown[]; raw: Buffer; expected: unknown[] }> = [
  { datatype: 'BOOL', field: 'bool_contents', values: [true, false, true], raw: Buffer.from([1, 0, 1]), expected: [1, 0, 1] },
  { datatype: 'UINT8', field: 'uint_contents', values: [0, 255, 7], raw: le(new Uint8Array([0, 255, 7])), expected: [0, 255, 7] },
  { datatype: 'UINT16', field: 'uint_contents', values: [0, 65535, 9], raw: le(new Uint16Array([0, 65535, 9])), expected: [0, 65535, 9] },
  { datatype: 'UINT32', field: 'uint_contents', values: [0, 4294967295, 3], raw: le(new Uint32Array([0, 4294967295, 3])), expected: [0, 4294967295, 3] },
  {
    datatype: 'UINT64',
    field: 'uint64_contents',
    values: ['0', '18446744073709551615', '9007199254740993'],
    raw: le(new BigUint64Array([0n, 18446744073709551615n, 9007199254740993n])),
    expected: [0n, 18446744073709551615n, 9007199254740993n],
  },
  { datatype: 'INT8', field: 'int_contents', values: [-128, 127, 0], raw: le(new Int8Array([-128, 127, 0])), expected: [-128, 127, 0] },
  { datatype: 'INT16', field: 'int_contents', values: [-32768, 32767, 1], raw: le(new Int16Array([-32768, 32767, 1])), expected: [-32768, 32767, 1] },
  { datatype: 'INT32', field: 'int_contents', values: [-2147483648, 2147483647, 2], raw: le(new Int32Array([-2147483648, 2147483647, 2])), expected: [-2147483648, 2147483647, 2] },
  {
    datatype: 'INT64',
    field: 'int64_contents',
    values: ['-9223372036854775808', '9223372036854775807', '-9007199254740993'],
    raw: le(new BigInt64Array([-9223372036854775808n, 9223372036854775807n, -9007199254740993n])),
    expected: [-9223372036854775808n, 9223372036854775807n, -9007199254740993n],
  },
  { datatype: 'FP32', field: 'fp32_contents', values: [1.5, -2.25, 0], raw: le(new Float32Array([1.5, -2.25, 0])), expected: [1.5, -2.25, 0] },
  { datatype: 'FP64', field: 'fp64_contents', values: [Math.PI, -1e300, 0], raw: le(new Float64Array([Math.PI, -1e300, 0])), expected: [Math.PI, -1e300, 0] },
  {
    datatype: 'BYTES',
    field: 'bytes_contents',
    values: [Buffer.from('héllo'), Buffer.alloc(0), Buffer.from([0, 255])],
    raw: bytesRaw([Buffer.from('héllo'), Buffer.alloc(0), Buffer.from([0, 255])]),
    expected: [Buffer.from('héllo'), Buffer.alloc(0), Buffer.from([0, 255])],
  },
  {
    datatype: 'FP16',
    raw: le(new Uint16Array([toHalfBits(1), toHalfBits(-0.5), toHalfBits(65504)])),
    expected: [toHalfBits(1), toHalfBits(-0.5), toHalfBits(65504)],
  },
  {
    datatype: 'BF16',
    raw: le(new Uint16Array([toBfloat16Bits(1), toBfloat16Bits(-3), toBfloat16Bits(1e30)])),
    expected: [toBfloat16Bits(1), toBfloat16Bits(-3), toBfloat16Bits(1e30)],
  },
];

