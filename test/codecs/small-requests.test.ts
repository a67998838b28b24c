// What the small-request path saves must not change what it computes: slab-backed input
// tensors stay independent and are copied before a hand-off; answer openings remembered per
// model version follow the version; the signature check finds duplicates in short and long lists.
import { describe, expect, it } from 'vitest';
import { decodeInferRequest, encodeInferResponse, parseJsonBody } from '../../src/codecs/json.js';
import { allocatePooled } from '../../src/core/datatypes.js';
import { ownBuffers, transferablesOf } from '../../src/core/tensor.js';
import type { InferenceResponse, Tensor } from '../../src/core/types.js';
import { checkRequest } from '../../src/models/signature.js';

const body = (data: number[], datatype = 'FP32') => Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype, shape: [1, data.length], data }] }));

describe('small JSON tensors from the slab', () => {
  it('decodes each request into its own values, untouched by later requests', () => {
    const first = decodeInferRequest(parseJsonBody(body([1.5, 2.5, 3.5])));
    const second = decodeInferRequest(parseJsonBody(body([7, 8, 9])));
    const firstData = first.inputs[0]!.data as Float32Array;
    expect(Array.from(firstData)).toEqual([1.5, 2.5, 3.5]);
    expect(Array.from(second.inputs[0]!.data as Float32Array)).toEqual([7, 8, 9]);
    (second.inputs[0]!.data as Float32Array).fill(0);
    expect(Array.from(firstData)).toEqual([1.5, 2.5, 3.5]);
  });

  it('gives views that are zero-filled, aligned, and copied to a buffer of their own before a transfer', () => {
    const views = Array.from({ length: 600 }, (_, i) => allocatePooled(i % 2 ? 'INT64' : 'FP32', 3)); // spans several slabs
    for (const v of views) {
      expect(Array.from(v as Float32Array, Number)).toEqual([0, 0, 0]);
      expect((v as Float32Array).byteOffset % 8).toBe(0);
    }
    const tensor: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 3], data: views[0]! };
    (tensor.data as Float32Array).set([4, 5, 6]);
    expect(transferablesOf([tensor])).toEqual([]); // a view of the slab is never transferred
    ownBuffers([tensor]);
    const own = tensor.data as Float32Array;
    expect(own.byteOffset).toBe(0);
    expect(own.buffer.byteLength).toBe(12);
    expect(Array.from(own)).toEqual([4, 5, 6]);
    expect(transferablesOf([tensor])).toEqual([own.buffer]);
  });

  it('allocates large tensors on their own, as before', () => {
    const big = allocatePooled('FP32', 1000) as Float32Array;
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(4000);
  });

  it('still refuses a value out of range in a small tensor', () => {
    expect(() => decodeInferRequest(parseJsonBody(body([1, 300], 'UINT8')))).toThrow(/300/);
  });
});

describe('answer openings', () => {
  const answer = (version: string, name = 'm'): InferenceResponse => ({
    model_name: name,
    model_version: version,
    outputs: [
      { name: 'p', datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0.25, 0.75) },
      { name: 'p2', datatype: 'INT64', shape: [1], data: BigInt64Array.of(3n) },
    ],
  });

  it('follows the model version and the output datatype from answer to answer', () => {
    for (const version of ['1', '2', '1']) {
      expect(JSON.parse(encodeInferResponse(answer(version)))).toEqual({
        model_name: 'm',
        model_version: version,
        outputs: [
          { name: 'p', datatype: 'FP32', shape: [1, 2], data: [0.25, 0.75] },
          { name: 'p2', datatype: 'INT64', shape: [1], data: [3] },
        ],
      });
    }
    const retyped: InferenceResponse = { model_name: 'm', model_version: '1', outputs: [{ name: 'p', datatype: 'INT32', shape: [1], data: Int32Array.of(5) }] };
    expect(JSON.parse(encodeInferResponse(retyped)).outputs[0]).toEqual({ name: 'p', datatype: 'INT32', shape: [1], data: [5] });
  });

  it('escapes names as JSON', () => {
    const text = encodeInferResponse(answer('1', 'a"b\\c'));
    expect(JSON.parse(text).model_name).toBe('a"b\\c');
  });
});

describe('signature check', () => {
  const meta = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `in${i}`, datatype: 'FP32' as const, shape: [-1, 1] }));
  const input = (name: string): Tensor => ({ name, datatype: 'FP32', shape: [1, 1], data: Float32Array.of(1) });

  it('finds a duplicate input in a short list and in a long one', () => {
    expect(() => checkRequest('m', meta(2), [], { inputs: [input('in0'), input('in1'), input('in0')] })).toThrow(/input 'in0' is given twice/);
    const many = meta(20);
    const inputs = many.map((m) => input(m.name));
    expect(() => checkRequest('m', many, [], { inputs })).not.toThrow();
    expect(() => checkRequest('m', many, [], { inputs: [...inputs, input('in7')] })).toThrow(/input 'in7' is given twice/);
  });

  it('reports missing and unknown inputs and duplicate or unknown outputs together', () => {
    const outputs = [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 1] }];
    expect(() =>
      checkRequest('m', meta(2), outputs, { inputs: [input('in0'), input('zz')], outputs: [{ name: 'y' }, { name: 'y' }, { name: 'q' }] }),
    ).toThrow(/unknown input 'zz'.*missing input 'in1'.*output 'y' is requested twice.*unknown output 'q'/);
  });
});
