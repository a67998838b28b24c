// Nested `data` must be nested as the shape says; flat data stays accepted.
import { describe, expect, it } from 'vitest';
import { decodeInferRequest } from '../../src/codecs/json.js';
import { refusal } from './support.js';

function decode(shape: number[], data: unknown) {
  return decodeInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape, data }] }).inputs[0]!;
}

describe('nested data', () => {
  it('refuses rows of the wrong length even when the total count matches', () => {
    expect(refusal(() => decode([2, 3], [[1, 2], [3, 4, 5, 6]]))).toBe("input 'x': data[0] holds 2 elements, but dimension 1 of shape [2, 3] is 3");
  });

  it('refuses the wrong number of rows', () => {
    expect(refusal(() => decode([2, 3], [[1, 2, 3, 4, 5, 6]]))).toBe("input 'x': data holds 1 elements, but dimension 0 of shape [2, 3] is 2");
  });

  it('names the place of a value where a list belongs, and of a list where a value belongs', () => {
    expect(refusal(() => decode([2, 3], [[1, 2, 3], 4, 5, 6]))).toMatch(/data holds 4 elements/);
    expect(refusal(() => decode([2, 2], [[1, 2], 3]))).toBe("input 'x': data[1] is a value, but shape [2, 2] expects a list of 2 there");
    expect(refusal(() => decode([1, 2, 2], [[[1, 2], [3, [4]]]]))).toBe("input 'x': data[0][1][1] is a list, but shape [1, 2, 2] expects a value there");
    expect(refusal(() => decode([2, 2, 1], [[[1], [2]], [[3], [4, 5]]]))).toMatch(/data\[1\]\[1\] holds 2 elements, but dimension 2 of shape \[2, 2, 1\] is 1/);
  });

  it('refuses nesting deeper than the shape', () => {
    expect(refusal(() => decode([2], [[1], [2]]))).toBe("input 'x': data[0] is a list, but shape [2] expects a value there");
    expect(refusal(() => decode([], [[1]]))).toBe("input 'x': data is a list, but shape [] has no dimension left for it");
  });

  it('accepts data nested exactly as the shape, and flat data', () => {
    expect(Array.from(decode([2, 3], [[1, 2, 3], [4, 5, 6]]).data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(decode([2, 3], [1, 2, 3, 4, 5, 6]).data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(decode([1, 2, 2], [[[1, 2], [3, 4]]]).data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from(decode([2, 0], [[], []]).data as Float32Array)).toEqual([]);
    expect(Array.from(decode([], 7).data as Float32Array)).toEqual([7]);
  });

  it('still refuses flat data whose count does not match', () => {
    expect(refusal(() => decode([2, 3], [1, 2, 3, 4, 5]))).toMatch(/shape \[2, 3\] needs 6 elements but 5 were given/);
  });
});
