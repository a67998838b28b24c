// gRPC typed contents: 64-bit integers exact both ways, values that do not fit refused.
import { describe, expect, it } from 'vitest';
import { decodeInferRequest, encodeInferResponse } from '../../src/codecs/grpc.js';
import type { InferTensorContentsMsg, ModelInferRequestMsg } from '../../src/codecs/grpc-messages.js';
import { refusal } from './support.js';

function decode(datatype: string, contents: InferTensorContentsMsg, count: number) {
  const msg: ModelInferRequestMsg = { model_name: 'm', model_version: '', id: '', inputs: [{ name: 'x', datatype, shape: [count], contents }], outputs: [], raw_input_contents: [] };
  return decodeInferRequest(msg).request.inputs[0]!;
}

describe('gRPC typed contents', () => {
  it('takes int64/uint64 contents exactly at the ends of their ranges', () => {
    expect(Array.from(decode('INT64', { int64_contents: ['9223372036854775807', '-9223372036854775808', 5] }, 3).data as BigInt64Array)).toEqual([
      2n ** 63n - 1n,
      -(2n ** 63n),
      5n,
    ]);
    expect(Array.from(decode('UINT64', { uint64_contents: ['18446744073709551615'] }, 1).data as BigUint64Array)).toEqual([2n ** 64n - 1n]);
  });

  it('refuses 64-bit values a message built in memory may hold beyond the range, instead of wrapping them', () => {
    expect(refusal(() => decode('INT64', { int64_contents: ['0', '9223372036854775808'] }, 2))).toMatch(/input 'x': element 1 is "9223372036854775808", outside the INT64 range/);
    expect(refusal(() => decode('UINT64', { uint64_contents: ['-1'] }, 1))).toMatch(/element 0 is "-1", outside the UINT64 range/);
  });

  it('refuses narrow integers beyond their type in the shared 32-bit fields', () => {
    expect(refusal(() => decode('INT8', { int_contents: [1, 200] }, 2))).toMatch(/element 1 is 200, outside the INT8 range \[-128, 127\]/);
    expect(refusal(() => decode('UINT16', { uint_contents: [70000] }, 1))).toMatch(/element 0 is 70000, outside the UINT16 range/);
  });

  it('refuses fp32 contents holding a double beyond the FP32 range, and keeps explicit non-finite floats', () => {
    expect(refusal(() => decode('FP32', { fp32_contents: [1, 3.5e38] }, 2))).toMatch(/element 1 is 3.5e\+38, outside the finite FP32 range/);
    expect(Array.from(decode('FP32', { fp32_contents: [NaN, Infinity, 0.5] }, 3).data as Float32Array)).toEqual([NaN, Infinity, 0.5]);
  });

  it('answers typed INT64/UINT64 contents as exact decimal strings', () => {
    const msg = encodeInferResponse(
      {
        model_name: 'm',
        model_version: '1',
        outputs: [
          { name: 'i', datatype: 'INT64', shape: [2], data: BigInt64Array.from([2n ** 63n - 1n, -(2n ** 63n)]) },
          { name: 'u', datatype: 'UINT64', shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
        ],
      },
      true,
    );
    expect(msg.outputs[0]!.contents).toEqual({ int64_contents: ['9223372036854775807', '-9223372036854775808'] });
    expect(msg.outputs[1]!.contents).toEqual({ uint64_contents: ['18446744073709551615'] });
  });
});
