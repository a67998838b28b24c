import { describe, expect, it } from 'vitest';
import { toHalfBits, type Datatype } from '../../../src/core/datatypes.js';
import { InvalidInputError } from '../../../src/core/errors.js';
import {
  attachBinaryInputs,
  binaryOutputSelection,
  encodeBinaryResponse,
  parseBinaryRequest,
  type InferenceResponseLike,
} from '../../../src/codecs/binary.js';
import { CASES } from './cases.js';

/** Builds a binary-extension body the way the official HTTP client does. */
function body(header: object, chunks: Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...chunks]), headerLength: json.length };
}

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return (error as Error).message;
  }
  throw new Error('expected an InvalidInputError');
}

const asList = (data: unknown): unknown[] => (Array.isArray(data) ? data.map((d: Uint8Array) => Buffer.from(d)) : Array.from(data as ArrayLike<unknown>));

describe('parseBinaryRequest', () => {
  it('takes the whole body as JSON without the header-length header', () => {
    const { header, binary } = parseBinaryRequest(Buffer.from('{"inputs":[]}'), undefined);
    expect(header).toEqual({ inputs: [] });
    expect(binary.length).toBe(0);
  });

  it('splits the JSON header from the binary section, as a view', () => {
    const { body: b, headerLength } = body({ id: 'x' }, [Buffer.from([1, 2, 3])]);
    const { header, binary } = parseBinaryRequest(b, String(headerLength));
    expect(header).toEqual({ id: 'x' });
    expect([...binary]).toEqual([1, 2, 3]);
    expect(binary.buffer).toBe(b.buffer);
    expect(parseBinaryRequest(b, [String(headerLength)]).header).toEqual({ id: 'x' });
    expect(parseBinaryRequest(b, headerLength).header).toEqual({ id: 'x' });
  });

  it('rejects a bad header length or header', () => {
    const b = Buffer.from('{"a":1}xyz');
    expect(invalid(() => parseBinaryRequest(b, 'abc'))).toMatch(/Inference-Header-Content-Length must be a non-negative integer, got 'abc'/);
    expect(invalid(() => parseBinaryRequest(b, '-3'))).toMatch(/must be a non-negative integer/);
    expect(invalid(() => parseBinaryRequest(b, '11'))).toMatch(/Inference-Header-Content-Length is 11 but the request body holds only 10 bytes/);
    expect(invalid(() => parseBinaryRequest(b, '5'))).toMatch(/the request's JSON header is not valid JSON/);
  });
});

describe('attachBinaryInputs', () => {
  for (const c of CASES) {
    it(`decodes ${c.datatype} binary data`, () => {
      const { body: b, headerLength } = body(
        { inputs: [{ name: 'x', datatype: c.datatype, shape: [3], parameters: { binary_data_size: c.raw.length } }] },
        [c.raw],
      );
      const { header, binary } = parseBinaryRequest(b, headerLength);
      const data = attachBinaryInputs((header as { inputs: unknown }).inputs, binary);
      expect(data).toHaveLength(1);
      expect(asList(data[0])).toEqual(c.expected);
    });
  }

  it('handles JSON and binary inputs mixed in one request, in order', () => {
    const a = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
    const s = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('hi')]);
    const c = Buffer.from(new BigInt64Array([5n, -6n]).buffer);
    const { body: b, headerLength } = body(
      {
        inputs: [
          { name: 'json1', datatype: 'INT32', shape: [2], data: [1, 2] },
          { name: 'a', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: a.length } },
          { name: 'json2', datatype: 'BYTES', shape: [1], data: ['x'], parameters: { other: 1 } },
          { name: 's', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: s.length } },
          { name: 'c', datatype: 'INT64', shape: [2], parameters: { binary_data_size: c.length } },
        ],
      },
      [a, s, c],
    );
    const { header, binary } = parseBinaryRequest(b, headerLength);
    const data = attachBinaryInputs((header as { inputs: unknown }).inputs, binary);
    expect(data[0]).toBeUndefined();
    expect(Array.from(data[1] as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(data[2]).toBeUndefined();
    expect(asList(data[3])).toEqual([Buffer.from('hi')]);
    expect(Array.from(data[4] as BigInt64Array)).toEqual([5n, -6n]);
  });

  it('accepts zero-size binary inputs and plain JSON requests', () => {
    expect(attachBinaryInputs([{ name: 'e', datatype: 'FP32', shape: [0], parameters: { binary_data_size: 0 } }], Buffer.alloc(0))).toHaveLength(1);
    expect(attachBinaryInputs([{ name: 'j', datatype: 'FP32', shape: [1], data: [1] }], Buffer.alloc(0))).toEqual([undefined]);
    expect(attachBinaryInputs(undefined, Buffer.alloc(0))).toEqual([]);
  });

  describe('rejects', () => {
    const one = (input: object, binary: Buffer) => invalid(() => attachBinaryInputs([input], binary));

    it('a size that does not match shape and datatype', () => {
      expect(one({ name: 'x', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 12 } }, Buffer.alloc(12))).toBe(
        "input 'x': the binary data holds 12 bytes but shape [2, 2] of FP32 needs 16",
      );
      expect(one({ name: 'h', datatype: 'FP16', shape: [3], parameters: { binary_data_size: 8 } }, Buffer.alloc(8))).toMatch(
        /holds 8 bytes but shape \[3\] of FP16 needs 6/,
      );
    });
    it('a size running past the binary section', () => {
      expect(one({ name: 'x', datatype: 'FP32', shape: [4], parameters: { binary_data_size: 16 } }, Buffer.alloc(8))).toMatch(
        /input 'x': 'binary_data_size' is 16 but only 8 bytes of binary data remain/,
      );
    });
    it('sizes that do not add up to the binary section', () => {
      expect(one({ name: 'x', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }, Buffer.alloc(6))).toMatch(
        /the request has 6 bytes of binary data but its inputs' 'binary_data_size' add up to 4/,
      );
      expect(invalid(() => attachBinaryInputs([{ name: 'j', datatype: 'FP32', shape: [1], data: [1] }], Buffer.alloc(4)))).toMatch(/add up to 0/);
      expect(invalid(() => attachBinaryInputs(undefined, Buffer.alloc(4)))).toMatch(/4 bytes of binary data but no 'inputs' list/);
    });
    it('a size that is not a non-negative integer', () => {
      for (const size of [-4, 1.5, '4', true]) {
        expect(one({ name: 'x', datatype: 'FP32', shape: [1], parameters: { binary_data_size: size } }, Buffer.alloc(4))).toMatch(
          /input 'x': 'binary_data_size' must be a non-negative integer/,
        );
      }
    });
    it('an input with both data and binary_data_size', () => {
      expect(one({ name: 'x', datatype: 'FP32', shape: [1], data: [1], parameters: { binary_data_size: 4 } }, Buffer.alloc(4))).toMatch(
        /input 'x': has both 'data' and 'binary_data_size'/,
      );
    });
    it('an unknown datatype or a bad shape', () => {
      expect(one({ name: 'x', datatype: 'FP8', shape: [1], parameters: { binary_data_size: 1 } }, Buffer.alloc(1))).toMatch(/input 'x': unknown datatype "FP8"/);
      expect(one({ name: 'x', datatype: 'UINT8', shape: [-1], parameters: { binary_data_size: 1 } }, Buffer.alloc(1))).toMatch(
        /input 'x': 'shape' must be a list of non-negative integers/,
      );
    });
    it('BOOL bytes other than 0 and 1', () => {
      expect(one({ name: 'b', datatype: 'BOOL', shape: [2], parameters: { binary_data_size: 2 } }, Buffer.from([0, 3]))).toMatch(
        /input 'b': BOOL element 1 in the binary data is 3, expected 0 or 1/,
      );
    });
    it('BYTES elements that do not fit their declared lengths or the shape', () => {
      const two = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from('a'), Buffer.from([1, 0, 0, 0]), Buffer.from('b')]);
      expect(one({ name: 's', datatype: 'BYTES', shape: [3], parameters: { binary_data_size: two.length } }, two)).toMatch(/too few for the 3 BYTES elements/);
      expect(one({ name: 's', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: two.length } }, two)).toMatch(
        /holds 5 bytes after the 1 BYTES elements/,
      );
      const overlong = Buffer.from([9, 0, 0, 0, 1]);
      expect(one({ name: 's', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 5 } }, overlong)).toMatch(
        /BYTES element 0 in the binary data declares 9 bytes but only 1 remain/,
      );
    });
  });
});

describe('binaryOutputSelection', () => {
  it('follows binary_data_output when no outputs are requested', () => {
    expect(binaryOutputSelection({ parameters: { binary_data_output: true } })).toBe('all');
    expect(binaryOutputSelection({ parameters: { binary_data_output: false } })).toEqual(new Set());
    expect(binaryOutputSelection({})).toEqual(new Set());
    expect(binaryOutputSelection(null)).toEqual(new Set());
  });

  it("lets each requested output's binary_data override the default", () => {
    expect(
      binaryOutputSelection({
        outputs: [{ name: 'a', parameters: { binary_data: true } }, { name: 'b' }, { name: 'c', parameters: { binary_data: false } }],
      }),
    ).toEqual(new Set(['a']));
    expect(
      binaryOutputSelection({
        parameters: { binary_data_output: true },
        outputs: [{ name: 'a' }, { name: 'b', parameters: { binary_data: false } }],
      }),
    ).toEqual(new Set(['a']));
  });
});

describe('encodeBinaryResponse', () => {
  /** Reads a response back the way a client does. */
  function decode(result: { body: Buffer; headerLength: number }) {
    const { header, binary } = parseBinaryRequest(result.body, result.headerLength);
    const h = header as { outputs: Array<{ name: string; datatype: Datatype; shape: number[]; parameters?: Record<string, unknown>; data?: unknown[] }> };
    const data = attachBinaryInputs(h.outputs, binary);
    return { header: h as Record<string, unknown> & typeof h, data };
  }

  for (const c of CASES) {
    it(`puts ${c.datatype} outputs after the header as raw bytes`, () => {
      const input = attachBinaryInputs([{ name: 'x', datatype: c.datatype, shape: [3], parameters: { binary_data_size: c.raw.length } }], c.raw)[0]!;
      const result = encodeBinaryResponse(
        { model_name: 'm', model_version: '1', outputs: [{ name: 'y', datatype: c.datatype, shape: [3], data: input, parameters: { keep: 'me' } }] },
        'all',
      );
      expect(result.body.subarray(result.headerLength)).toEqual(c.raw);
      const { header, data } = decode(result);
      expect(header.outputs[0]).toEqual({ name: 'y', datatype: c.datatype, shape: [3], parameters: { keep: 'me', binary_data_size: c.raw.length } });
      expect(asList(data[0])).toEqual(c.expected);
    });
  }

  it('mixes JSON and binary outputs and keeps the response fields', () => {
    const response: InferenceResponseLike = {
      model_name: 'm',
      model_version: '2',
      id: 'req',
      parameters: { big: 2n ** 60n, small: 3n, s: 'x' },
      outputs: [
        { name: 'a', datatype: 'FP32', shape: [2], data: new Float32Array([0.5, 1.5]) },
        { name: 'b', datatype: 'INT64', shape: [2], data: new BigInt64Array([7n, -8n]) },
        { name: 'c', datatype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
        { name: 'd', datatype: 'BYTES', shape: [1], data: [Buffer.from('héllo')] },
        { name: 'e', datatype: 'FP16', shape: [1], data: new Uint16Array([toHalfBits(0.5)]) },
      ],
    };
    const result = encodeBinaryResponse(response, new Set(['b', 'd']));
    const { header, data } = decode(result);
    expect(header).toMatchObject({ model_name: 'm', model_version: '2', id: 'req', parameters: { big: 2n ** 60n, small: 3, s: 'x' } });
    // Written as an exact integer (as Triton does), not rounded to a double nor quoted.
    expect(result.body.subarray(0, result.headerLength).toString()).toContain('"big":1152921504606846976,');
    expect(header.outputs).toEqual([
      { name: 'a', datatype: 'FP32', shape: [2], data: [0.5, 1.5] },
      { name: 'b', datatype: 'INT64', shape: [2], parameters: { binary_data_size: 16 } },
      { name: 'c', datatype: 'BOOL', shape: [2], data: [true, false] },
      { name: 'd', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 10 } },
      { name: 'e', datatype: 'FP16', shape: [1], data: [0.5] },
    ]);
    expect(Array.from(data[1] as BigInt64Array)).toEqual([7n, -8n]);
    expect(asList(data[3])).toEqual([Buffer.from('héllo')]);
    expect(result.body.length).toBe(result.headerLength + 16 + 10);
  });

  it('encodes outputs given as plain (even nested) JSON values', () => {
    const result = encodeBinaryResponse(
      {
        model_name: 'm',
        outputs: [
          { name: 'n', datatype: 'INT32', shape: [2, 2], data: [[1, 2], [3, 4]] },
          { name: 's', datatype: 'BYTES', shape: [2], data: ['a', 'bc'] },
          { name: 'empty', datatype: 'FP32', shape: [0], data: [] },
        ],
      },
      'all',
    );
    const { data } = decode(result);
    expect(Array.from(data[0] as Int32Array)).toEqual([1, 2, 3, 4]);
    expect(asList(data[1])).toEqual([Buffer.from('a'), Buffer.from('bc')]);
    expect(asList(data[2])).toEqual([]);
  });

  it('writes a plain JSON body when nothing is selected', () => {
    const result = encodeBinaryResponse({ model_name: 'm', outputs: [{ name: 'a', datatype: 'UINT8', shape: [1], data: new Uint8Array([9]) }] }, new Set());
    expect(result.headerLength).toBe(result.body.length);
    expect(JSON.parse(result.body.toString())).toEqual({ model_name: 'm', outputs: [{ name: 'a', datatype: 'UINT8', shape: [1], data: [9] }] });
  });
});
