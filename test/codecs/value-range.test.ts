// Values that do not fit their datatype are refused, never saturated or rounded to an integer.
import { describe, expect, it } from 'vitest';
import { fromHalfBits, fromBfloat16Bits } from '../../src/core/datatypes.js';
import { fromValues } from '../../src/core/tensor.js';
import type { Tensor } from '../../src/core/types.js';
import { decodeJsonInput, literalBody, refusal } from './support.js';

const decode = (datatype: string, literals: string[], name = 'x'): Tensor => decodeJsonInput(literalBody(datatype, literals, name));

describe('floats beyond their type', () => {
  it('refuses FP16 values that would become infinite, naming the input and element', () => {
    expect(refusal(() => decode('FP16', ['1', '1e6', '70000'], 'half')).replace(/\s+/g, ' ')).toBe(
      "input 'half': element 1 is 1000000, outside the finite FP16 range (±65504)",
    );
    expect(refusal(() => decode('FP16', ['-70000']))).toMatch(/element 0 is -70000, outside the finite FP16 range/);
    expect(refusal(() => decode('FP16', ['65520']))).toMatch(/element 0 is 65520/);
  });

  it('keeps FP16 values that round to the largest finite half', () => {
    expect(Array.from(decode('FP16', ['65504', '65519', '-65504', '1e-8']).data as Uint16Array, fromHalfBits)).toEqual([65504, 65504, -65504, 0]);
  });

  it('refuses BF16 values beyond its range and keeps those within', () => {
    expect(refusal(() => decode('BF16', ['0', '3.5e38']))).toMatch(/element 1 is 3.5e\+38, outside the finite BF16 range/);
    expect(Array.from(decode('BF16', ['3.38e38', '-2']).data as Uint16Array, fromBfloat16Bits)).toEqual([3.3762391092936863e38, -2]);
  });

  it('refuses FP32 values that would become infinite', () => {
    expect(refusal(() => decode('FP32', ['1', '2', '3.5e38']))).toBe("input 'x': element 2 is 3.5e+38, outside the finite FP32 range (±3.4028235e38)");
    expect(refusal(() => decode('FP32', ['-1e39']))).toMatch(/element 0 is -1e\+39/);
    expect(Array.from(decode('FP32', ['3.4028234e38', '1e-50']).data as Float32Array)).toEqual([3.4028234663852886e38, 0]);
  });

  it('refuses literals beyond the FP64 range in every float type', () => {
    for (const datatype of ['FP16', 'BF16', 'FP32', 'FP64']) {
      expect(refusal(() => decode(datatype, ['0', '1e309'])), datatype).toMatch(/element 1 is Infinity \(a number beyond the FP64 range\), outside the finite/);
      expect(refusal(() => decode(datatype, ['-1e400'])), datatype).toMatch(/element 0 is -Infinity/);
    }
  });

  it('takes explicit non-finite spellings in every float type', () => {
    expect(Array.from(decode('FP32', ['"NaN"', '"Infinity"', '"-Infinity"']).data as Float32Array)).toEqual([NaN, Infinity, -Infinity]);
    expect(Array.from(decode('FP64', ['"inf"']).data as Float64Array)).toEqual([Infinity]);
    expect(Array.from(decode('FP16', ['"NaN"', '"-Infinity"']).data as Uint16Array, fromHalfBits)).toEqual([NaN, -Infinity]);
    expect(Array.from(decode('BF16', ['"Infinity"']).data as Uint16Array, fromBfloat16Bits)).toEqual([Infinity]);
  });

  it('lets a JavaScript model return NaN and Infinity on purpose, but not values that overflow', () => {
    expect(Array.from(fromValues('FP32', [NaN, -Infinity], "output 'y'") as Float32Array)).toEqual([NaN, -Infinity]);
    expect(() => fromValues('FP16', [1e6], "output 'y'")).toThrow(/output 'y': element 0 is 1000000, outside the finite FP16 range/);
  });
});

describe('integers', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['INT8', '128', /element 1 is 128, outside the INT8 range \[-128, 127\]/],
    ['INT8', '-129', /element 1 is -129, outside the INT8 range/],
    ['UINT8', '256', /element 1 is 256, outside the UINT8 range \[0, 255\]/],
    ['UINT8', '-1', /element 1 is -1, outside the UINT8 range/],
    ['INT16', '32768', /outside the INT16 range \[-32768, 32767\]/],
    ['UINT16', '65536', /outside the UINT16 range \[0, 65535\]/],
    ['INT32', '2147483648', /outside the INT32 range \[-2147483648, 2147483647\]/],
    ['UINT32', '4294967296', /outside the UINT32 range \[0, 4294967295\]/],
    ['INT64', '9223372036854775808', /element 1 is 9223372036854775808, outside the INT64 range/],
    ['UINT64', '18446744073709551616', /element 1 is 18446744073709551616, outside the UINT64 range/],
  ];
  it.each(cases)('%s refuses %s', (datatype, literal, message) => {
    expect(refusal(() => decode(datatype, ['0', literal]))).toMatch(message);
  });

  it.each(['INT8', 'UINT8', 'INT16', 'UINT16', 'INT32', 'UINT32', 'INT64', 'UINT64'])('%s refuses non-integers', (datatype) => {
    expect(refusal(() => decode(datatype, ['1', '2.5']))).toBe(`input 'x': element 1 is 2.5, not an integer; ${datatype} holds integers only`);
    expect(refusal(() => decode(datatype, ['true']))).toMatch(/element 0 is true, expected a valid/);
  });

  it('takes integers written with a fraction or an exponent when their value is whole', () => {
    expect(Array.from(decode('INT32', ['1.0', '2e3', '-0']).data as Int32Array)).toEqual([1, 2000, 0]);
  });
});
