import { describe, expect, it } from 'vitest';
import type { Datatype } from '../../../src/core/datatypes.js';
import { InvalidInputError } from '../../../src/core/errors.js';
import type { InferenceResponse } from '../../../src/core/types.js';
import {
  decodeInferRequest,
  decodeParameters,
  encodeInferResponse,
  encodeModelConfig,
  encodeParameters,
  TYPED_OUTPUT_PARAMETER,
} from '../../../src/codecs/grpc.js';
import type { ModelInferRequestMsg } from '../../../src/codecs/grpc-messages.js';
import { bytesRaw, CASES, le } from '../binary/cases.js';

function request(partial: Partial<ModelInferRequestMsg>): ModelInferRequestMsg {
  return { model_name: 'm', model_version: '', id: '', inputs: [], outputs: [], raw_input_contents: [], ...partial };
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

describe('gRPC codec: requests', () => {
  for (const c of CASES.filter((x) => x.field !== undefined)) {
    it(`decodes ${c.datatype} typed contents`, () => {
      const decoded = decodeInferRequest(request({ inputs: [{ name: 'x', datatype: c.datatype, shape: ['3'], contents: { [c.field!]: c.values } }] }));
      const t = decoded.request.inputs[0]!;
      expect(t).toMatchObject({ name: 'x', datatype: c.datatype, shape: [3] });
      expect(asList(t.data)).toEqual(c.expected);
    });
  }

  for (const c of CASES) {
    it(`decodes ${c.datatype} raw contents as a view of the message bytes`, () => {
      const decoded = decodeInferRequest(request({ inputs: [{ name: 'x', datatype: c.datatype, shape: ['1', '3'] }], raw_input_contents: [c.raw] }));
      const t = decoded.request.inputs[0]!;
      expect(t.shape).toEqual([1, 3]);
      expect(asList(t.data)).toEqual(c.expected);
    });
  }

  it('keeps raw numeric data zero-copy when aligned', () => {
    const backing = new Float32Array([1, 2, 3, 4]);
    const raw = Buffer.from(backing.buffer);
    const t = decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'FP32', shape: ['4'] }], raw_input_contents: [raw] })).request.inputs[0]!;
    expect((t.data as Float32Array).buffer).toBe(backing.buffer);
  });

  it('copies raw data that arrives unaligned', () => {
    const body = Buffer.alloc(17);
    const raw = body.subarray(1);
    new Float32Array([1, 2, 3, 4]).forEach((v, i) => raw.writeFloatLE(v, i * 4));
    const t = decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'FP32', shape: ['4'] }], raw_input_contents: [raw] })).request.inputs[0]!;
    expect(Array.from(t.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('decodes ids, versions, parameters and requested outputs', () => {
    const decoded = decodeInferRequest(
      request({
        model_name: 'mm',
        model_version: '3',
        id: 'abc',
        parameters: {
          flag: { parameter_choice: 'bool_param', bool_param: true },
          count: { parameter_choice: 'int64_param', int64_param: '42' },
          big: { parameter_choice: 'int64_param', int64_param: '-9223372036854775808' },
          ubig: { parameter_choice: 'uint64_param', uint64_param: '18446744073709551615' },
          ratio: { parameter_choice: 'double_param', double_param: 0.25 },
          label: { parameter_choice: 'string_param', string_param: 'x' },
        },
        inputs: [
          {
            name: 'x',
            datatype: 'INT32',
            shape: ['0'],
            parameters: { note: { parameter_choice: 'string_param', string_param: 'n' } },
          },
        ],
        outputs: [{ name: 'y', parameters: { top_k: { parameter_choice: 'int64_param', int64_param: '3' } } }, { name: 'z' }],
      }),
    );
    expect(decoded.modelName).toBe('mm');
    expect(decoded.modelVersion).toBe('3');
    expect(decoded.typedOutput).toBe(false);
    expect(decoded.request.id).toBe('abc');
    expect(decoded.request.parameters).toEqual({
      flag: true,
      count: 42,
      big: -9223372036854775808n,
      ubig: 18446744073709551615n,
      ratio: 0.25,
      label: 'x',
    });
    expect(decoded.request.inputs[0]!.parameters).toEqual({ note: 'n' });
    expect(decoded.request.outputs).toEqual([{ name: 'y', parameters: { top_k: 3 } }, { name: 'z' }]);
  });

  it('leaves the version to the server when empty, and takes the typed-output switch out of the parameters', () => {
    const decoded = decodeInferRequest(
      request({ parameters: { [TYPED_OUTPUT_PARAMETER]: { parameter_choice: 'bool_param', bool_param: true } } }),
    );
    expect(decoded.modelVersion).toBeUndefined();
    expect(decoded.typedOutput).toBe(true);
    expect(decoded.request.parameters).toBeUndefined();
  });

  describe('rejects', () => {
    it('a request without a model name', () => {
      expect(invalid(() => decodeInferRequest(request({ model_name: '' })))).toMatch(/model_name/);
    });
    it('an input without a name', () => {
      expect(invalid(() => decodeInferRequest(request({ inputs: [{ datatype: 'FP32', shape: ['0'] }] })))).toMatch(/input 0 has no name/);
    });
    it('an unknown datatype', () => {
      expect(invalid(() => decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'FP8', shape: ['1'] }] })))).toMatch(
        /input 'x': unknown datatype 'FP8'/,
      );
    });
    it('a negative dimension', () => {
      expect(
        invalid(() => decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'FP32', shape: ['-1', '2'], contents: { fp32_contents: [1, 2] } }] }))),
      ).toMatch(/input 'x': shape \[-1, 2\] must hold non-negative integers/);
    });
    it('contents and raw both set', () => {
      const message = invalid(() =>
        decodeInferRequest(
          request({
            inputs: [{ name: 'x', datatype: 'FP32', shape: ['1'], contents: { fp32_contents: [1] } }],
            raw_input_contents: [le(new Float32Array([1]))],
          }),
        ),
      );
      expect(message).toMatch(/input 'x': has both contents \(fp32_contents\) and raw_input_contents/);
    });
    it('a raw size that does not match shape and datatype', () => {
      const message = invalid(() =>
        decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'FP32', shape: ['2', '2'] }], raw_input_contents: [Buffer.alloc(12)] })),
      );
      expect(message).toBe("input 'x': raw_input_contents holds 12 bytes but shape [2, 2] of FP32 needs 16");
    });
    it('a raw entry count that does not match the inputs', () => {
      const message = invalid(() =>
        decodeInferRequest(
          request({
            inputs: [
              { name: 'a', datatype: 'FP32', shape: ['1'] },
              { name: 'b', datatype: 'FP32', shape: ['1'] },
            ],
            raw_input_contents: [Buffer.alloc(4)],
          }),
        ),
      );
      expect(message).toMatch(/raw_input_contents has 1 entries but the request has 2 inputs/);
    });
    it('typed contents whose count does not match the shape', () => {
      const message = invalid(() =>
        decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'FP32', shape: ['2', '3'], contents: { fp32_contents: [1, 2, 3, 4, 5] } }] })),
      );
      expect(message).toBe("input 'x': shape [2, 3] needs 6 elements but contents.fp32_contents holds 5");
    });
    it('typed contents in the field of another datatype', () => {
      const message = invalid(() =>
        decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'FP32', shape: ['2'], contents: { int_contents: [1, 2] } }] })),
      );
      expect(message).toMatch(/FP32 data belongs in contents.fp32_contents, not int_contents/);
    });
    it('values out of range for a narrow integer type', () => {
      const message = invalid(() =>
        decodeInferRequest(request({ inputs: [{ name: 'x', datatype: 'UINT8', shape: ['2'], contents: { uint_contents: [1, 300] } }] })),
      );
      expect(message).toMatch(/input 'x': element 1 is 300, outside the UINT8 range \[0, 255\]/);
    });
    it('FP16 and BF16 in typed contents', () => {
      for (const datatype of ['FP16', 'BF16']) {
        const message = invalid(() =>
          decodeInferRequest(request({ inputs: [{ name: 'h', datatype, shape: ['1'], contents: { fp32_contents: [1] } }] })),
        );
        expect(message).toMatch(new RegExp(`${datatype} data must be sent in raw_input_contents`));
      }
    });
    it('BOOL raw bytes other than 0 and 1', () => {
      const message = invalid(() =>
        decodeInferRequest(request({ inputs: [{ name: 'b', datatype: 'BOOL', shape: ['2'] }], raw_input_contents: [Buffer.from([1, 2])] })),
      );
      expect(message).toMatch(/BOOL element 1 in raw_input_contents is 2, expected 0 or 1/);
    });
    it('BYTES raw that is truncated, overlong or short of elements', () => {
      const good = bytesRaw([Buffer.from('ab'), Buffer.from('c')]);
      const cases: Array<[Buffer, RegExp]> = [
        [good.subarray(0, good.length - 1), /BYTES element 1 in raw_input_contents declares 1 bytes but only 0 remain/],
        [Buffer.concat([good, Buffer.from([7])]), /holds 1 bytes after the 2 BYTES elements/],
        [bytesRaw([Buffer.from('abcdefgh')]), /ends after 1 BYTES elements but the shape needs 2/],
        [Buffer.alloc(3), /too few for the 2 BYTES elements/],
      ];
      for (const [raw, pattern] of cases) {
        const message = invalid(() => decodeInferRequest(request({ inputs: [{ name: 's', datatype: 'BYTES', shape: ['2'] }], raw_input_contents: [raw] })));
        expect(message).toMatch(pattern);
      }
    });
    it('a parameter without a value', () => {
      expect(invalid(() => decodeInferRequest(request({ parameters: { p: {} } })))).toMatch(/request: parameter 'p' has no value/);
    });
    it('a requested output without a name', () => {
      expect(invalid(() => decodeInferRequest(request({ outputs: [{ name: '' }] })))).toMatch(/requested output 0 has no name/);
    });
  });
});

describe('gRPC codec: responses', () => {
  const response = (datatype: Datatype, data: InferenceResponse['outputs'][number]['data']): InferenceResponse => ({
    model_name: 'm',
    model_version: '1',
    id: 'r1',
    parameters: { n: 5, big: 2n ** 63n, s: 'x', f: 0.5, b: false },
    outputs: [{ name: 'y', datatype, shape: [3], data, parameters: { k: 1 } }],
  });

  for (const c of CASES) {
    it(`encodes ${c.datatype} as raw_output_contents by default`, () => {
      const decoded = decodeInferRequest(request({ inputs: [{ name: 'x', datatype: c.datatype, shape: ['3'] }], raw_input_contents: [c.raw] }));
      const msg = encodeInferResponse(response(c.datatype, decoded.request.inputs[0]!.data));
      expect(msg.outputs[0]).toMatchObject({ name: 'y', datatype: c.datatype, shape: [3], parameters: { k: { int64_param: 1 } } });
      expect(msg.outputs[0]!.contents).toBeUndefined();
      expect(Buffer.from(msg.raw_output_contents[0]!)).toEqual(c.raw);
    });
  }

  for (const c of CASES.filter((x) => x.field !== undefined)) {
    it(`encodes ${c.datatype} as typed contents on request`, () => {
      const decoded = decodeInferRequest(request({ inputs: [{ name: 'x', datatype: c.datatype, shape: ['3'] }], raw_input_contents: [c.raw] }));
      const msg = encodeInferResponse(response(c.datatype, decoded.request.inputs[0]!.data), true);
      expect(msg.raw_output_contents).toEqual([]);
      const values = msg.outputs[0]!.contents![c.field!]!;
      const back = decodeInferRequest(request({ inputs: [{ name: 'x', datatype: c.datatype, shape: ['3'], contents: { [c.field!]: values } }] }));
      expect(asList(back.request.inputs[0]!.data)).toEqual(c.expected);
    });
  }

  it('refuses typed contents for FP16 outputs', () => {
    expect(invalid(() => encodeInferResponse(response('FP16', new Uint16Array(3)), true))).toMatch(/output 'y' is FP16, which typed contents cannot carry/);
  });

  it('encodes parameters with the narrowest exact field', () => {
    const msg = encodeInferResponse(response('FP32', new Float32Array(3)));
    expect(msg.parameters).toEqual({
      n: { int64_param: 5 },
      big: { uint64_param: '9223372036854775808' },
      s: { string_param: 'x' },
      f: { double_param: 0.5 },
      b: { bool_param: false },
    });
    expect(msg.id).toBe('r1');
  });

  it('round-trips parameters', () => {
    const params = { a: true, b: -7, c: 2n ** 62n, d: 1.25, e: 'text', f: 2n ** 64n - 1n };
    const wire = encodeParameters(params);
    const choices = Object.fromEntries(
      Object.entries(wire).map(([k, v]) => [k, { ...v, parameter_choice: Object.keys(v)[0] as 'bool_param' }]),
    );
    expect(decodeParameters(choices, 'p')).toEqual(params);
  });
});

describe('gRPC codec: model configuration', () => {
  it('leaves the batch dimension out when the model batches', () => {
    const config = encodeModelConfig({
      name: 'm',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'BYTES', shape: [-1, 30] }],
      outputs: [{ name: 'y', datatype: 'FP16', shape: [-1] }],
      parameters: { max_batch_size: 8 },
    });
    expect(config).toMatchObject({
      max_batch_size: 8,
      backend: 'onnxruntime',
      input: [{ name: 'x', data_type: 'TYPE_STRING', dims: [30] }],
      output: [{ name: 'y', data_type: 'TYPE_FP16', dims: [] }],
    });
  });

  it('keeps full shapes when there is no batch dimension', () => {
    const config = encodeModelConfig({
      name: 'm',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }],
      parameters: { max_batch_size: 8 },
    });
    expect(config).toMatchObject({ max_batch_size: 0, input: [{ dims: [3, 4] }], output: [{ dims: [-1] }] });
  });
});
