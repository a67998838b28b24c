// A remote's answer is held to the request: the requested outputs only, in the declared shape.
import { describe, expect, it } from 'vitest';
import { RuntimeError } from '../../src/core/errors.js';
import type { Tensor } from '../../src/core/types.js';
import { conformOutputs, readSignature } from '../../src/runtimes/remote/client.js';

const tensor = (name: string, shape: number[]): Tensor => ({ name, datatype: 'INT64', shape, data: new BigInt64Array(shape.reduce((a, b) => a * b, 1)) });
const declared = [
  { name: 'probabilities', datatype: 'FP32' as const, shape: [-1, 2] },
  { name: 'label', datatype: 'INT64' as const, shape: [-1] },
];

describe('answers of a remote model', () => {
  it('keeps only the requested outputs, in the requested order', () => {
    const out = conformOutputs('m', [tensor('probabilities', [3, 2]), tensor('label', [3])], ['label'], declared);
    expect(out.map((t) => t.name)).toEqual(['label']);
    const both = conformOutputs('m', [tensor('probabilities', [3, 2]), tensor('label', [3])], ['label', 'probabilities'], declared);
    expect(both.map((t) => t.name)).toEqual(['label', 'probabilities']);
  });

  it('drops one extra trailing dimension of 1, and nothing else', () => {
    expect(conformOutputs('m', [tensor('label', [3, 1])], ['label'], declared)[0]!.shape).toEqual([3]);
    // [3, 2] is not [-1] with a unit dimension added: left as answered.
    expect(conformOutputs('m', [tensor('label', [3, 2])], ['label'], declared)[0]!.shape).toEqual([3, 2]);
    // An output with its declared rank is never reshaped, even when its last dimension is 1.
    expect(conformOutputs('m', [tensor('probabilities', [1, 1])], ['probabilities'], declared)[0]!.shape).toEqual([1, 1]);
  });

  it('names an output the remote left out', () => {
    const call = () => conformOutputs('m', [tensor('probabilities', [3, 2])], ['label'], declared);
    expect(call).toThrow(RuntimeError);
    expect(call).toThrow("remote model 'm' answered without the output 'label' (it sent probabilities)");
  });

  it('reads dims sent as numbers or as int64 strings, and refuses others', () => {
    expect(readSignature([{ name: 'x', datatype: 'FP32', shape: ['-1', 30] }], 'inputs', 'there')).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 30] }]);
    expect(() => readSignature([{ name: 'x', datatype: 'FP32', shape: [1.5] }], 'inputs', 'there')).toThrow("there: the remote's inputs[0] is not a tensor description");
    expect(() => readSignature([{ name: 'x', datatype: 'FP32', shape: [true] }], 'inputs', 'there')).toThrow(/inputs\[0\]/);
    expect(() => readSignature([{ name: 'x', datatype: 'FP32', shape: [''] }], 'inputs', 'there')).toThrow(/inputs\[0\]/);
    expect(() => readSignature(undefined, 'outputs', 'there')).toThrow("there: the remote's metadata has no 'outputs'");
  });
});
