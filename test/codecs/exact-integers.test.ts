// INT64/UINT64 beyond 2^53 keep every digit over JSON, in and out, on every JSON path.
import { parse as parseLossless } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { binaryCodec } from '../../src/codecs/binary-request.js';
import { encodeBinaryResponse, parseBinaryRequest } from '../../src/codecs/binary.js';
import { decodeInferRequest, encodeInferResponse, parseJsonBody, parseV1JsonBody } from '../../src/codecs/json.js';
import { decodeV1Instances, encodeV1Predictions, parseV1Body } from '../../src/codecs/v1.js';
import type { Tensor } from '../../src/core/types.js';
import { decodeJsonInput as decode, literalBody as body, refusal } from './support.js';

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

const exactNumbers = (text: string) => parseLossless(text, null, (t) => (/^-?\d+$/.test(t) ? BigInt(t) : Number(t)));

describe('JSON input', () => {
  it('takes INT64 numbers beyond 2^53 exactly, up to 2^63 - 1 and down to -2^63', () => {
    const t = decode(body('INT64', [`${INT64_MAX}`, `${INT64_MIN}`, '9007199254740993', '-9007199254740993', '1', '-0']));
    expect(Array.from(t.data as BigInt64Array)).toEqual([INT64_MAX, INT64_MIN, 9007199254740993n, -9007199254740993n, 1n, 0n]);
  });

  it('takes UINT64 up to 2^64 - 1 exactly', () => {
    const t = decode(body('UINT64', [`${UINT64_MAX}`, '18446744073709551614', '9007199254740993']));
    expect(Array.from(t.data as BigUint64Array)).toEqual([UINT64_MAX, UINT64_MAX - 1n, 9007199254740993n]);
  });

  it('takes decimal strings for INT64 and UINT64', () => {
    expect(Array.from(decode(body('INT64', [`"${INT64_MAX}"`, '"-5"'])).data as BigInt64Array)).toEqual([INT64_MAX, -5n]);
    expect(Array.from(decode(body('UINT64', [`"${UINT64_MAX}"`])).data as BigUint64Array)).toEqual([UINT64_MAX]);
  });

  it('refuses values outside the range, naming the element and the value as sent', () => {
    expect(refusal(() => decode(body('INT64', ['1', '9223372036854775808'])))).toBe(
      "input 'x': element 1 is 9223372036854775808, outside the INT64 range [-9223372036854775808, 9223372036854775807]",
    );
    expect(refusal(() => decode(body('INT64', ['-9223372036854775809'])))).toMatch(/element 0 is -9223372036854775809, outside the INT64 range/);
    expect(refusal(() => decode(body('UINT64', ['0', '0', '18446744073709551616'])))).toMatch(/element 2 is 18446744073709551616, outside the UINT64 range/);
    expect(refusal(() => decode(body('UINT64', ['-1'])))).toMatch(/element 0 is -1, outside the UINT64 range \[0, 18446744073709551615\]/);
    expect(refusal(() => decode(body('INT64', ['"99999999999999999999"'])))).toMatch(/element 0 is "99999999999999999999", outside the INT64 range/);
  });

  it('refuses non-integers for INT64', () => {
    expect(refusal(() => decode(body('INT64', ['1.5'])))).toMatch(/element 0 is 1.5, not an integer/);
    expect(refusal(() => decode(body('INT64', ['"1.5"'])))).toMatch(/element 0 is "1.5", expected a valid INT64 number/);
  });

  it('keeps long integers exact in nested data, in the binary header and in parameters', () => {
    const nested = decode(`{"inputs":[{"name":"x","datatype":"INT64","shape":[2,1],"data":[[${INT64_MAX}],[-9007199254740993]]}]}`);
    expect(Array.from(nested.data as BigInt64Array)).toEqual([INT64_MAX, -9007199254740993n]);

    const header = Buffer.from(body('INT64', [`${INT64_MAX}`]).replace('{"inputs"', '{"parameters":{"seed":12345678901234567890},"inputs"'));
    const request = binaryCodec.decode(header, header.length);
    expect(Array.from(request.inputs[0]!.data as BigInt64Array)).toEqual([INT64_MAX]);
    expect(request.parameters).toEqual({ seed: 12345678901234567890n });
  });

  it('reads long integers in other datatypes as JSON.parse does: the nearest double, refused when out of range', () => {
    expect(Array.from(decode(body('FP64', ['9007199254740993'])).data as Float64Array)).toEqual([9007199254740992]);
    expect(refusal(() => decode(body('INT32', ['12345678901234567890'])))).toMatch(/element 0 is 12345678901234567000, outside the INT32 range/);
    expect(refusal(() => decode(body('FP64', ['1' + '0'.repeat(400)])))).toMatch(/element 0 is Infinity \(a number beyond the FP64 range\), outside the finite FP64 range/);
  });

  it('keeps long integer parameters exact in any request', () => {
    const text = body('FP32', ['0.5']).replace('"shape"', '"parameters":{"id":-9223372036854775807},"shape"').replace('{"inputs"', '{"parameters":{"seed":18446744073709551615},"inputs"');
    const request = decodeInferRequest(parseJsonBody(text));
    expect(request.parameters).toEqual({ seed: 2n ** 64n - 1n });
    expect(request.inputs[0]!.parameters).toEqual({ id: -(2n ** 63n) + 1n });
    expect(decodeInferRequest(parseJsonBody(body('FP32', ['0.5']).replace('{"inputs"', '{"parameters":{"n":9007199254740991},"inputs"'))).parameters).toEqual({ n: 9007199254740991 });
  });

  it('parses ordinary bodies as JSON.parse does (floats with long fractions, duplicate keys)', () => {
    const text = '{"inputs":[{"name":"x","datatype":"FP64","shape":[3],"data":[0.30000000000000004,1.0000000000000002e-7,-123456789012345.5]}],"id":"a","id":"b"}';
    expect(parseJsonBody(text)).toEqual(JSON.parse(text));
    const long = '{"id":"b","id":"c","parameters":{"n":12345678901234567}}';
    expect(parseJsonBody(long)).toEqual({ id: 'c', parameters: { n: 12345678901234567n } });
    const v1 = '{"instances":[[12345678901234567, 0.30000000000000004]]}';
    expect(parseV1JsonBody(v1)).toEqual({ instances: [[12345678901234567n, 0.30000000000000004]] });
    expect(parseV1JsonBody('{"instances":[[0.30000000000000004]]}')).toEqual({ instances: [[0.30000000000000004]] });
  });

  it('refuses invalid JSON with a 400-class error on both parsers', () => {
    expect(refusal(() => parseJsonBody('{"inputs": ['))).toMatch(/the request body is not valid JSON/);
    expect(refusal(() => parseJsonBody('{"inputs": [12345678901234567890,'))).toMatch(/the request body is not valid JSON/);
    const header = Buffer.from('{"inputs": [12345678901234567890');
    expect(refusal(() => parseBinaryRequest(header, header.length))).toMatch(/the request's JSON header is not valid JSON/);
  });

  it('names the problem when a long integer lands where a small one belongs', () => {
    expect(refusal(() => decode('{"inputs":[{"name":"x","datatype":"INT64","shape":[12345678901234567890],"data":[9223372036854775807]}]}'))).toMatch(
      /'shape' must be a list of non-negative integers, got \[12345678901234567890\]/,
    );
  });
});

describe('JSON output', () => {
  const outputs: Tensor[] = [
    { name: 'i', datatype: 'INT64', shape: [2, 2], data: BigInt64Array.from([INT64_MAX, INT64_MIN, 9007199254740993n, -1n]) },
    { name: 'u', datatype: 'UINT64', shape: [2, 1], data: BigUint64Array.from([UINT64_MAX, 2n ** 53n + 1n]) },
  ];

  it('writes INT64/UINT64 as exact integers in the JSON answer', () => {
    const text = encodeInferResponse({ model_name: 'm', model_version: '1', parameters: { n: 2n ** 60n + 1n }, outputs });
    expect(text).toContain(`"data":[${INT64_MAX},${INT64_MIN},9007199254740993,-1]`);
    expect(text).toContain(`"data":[${UINT64_MAX},9007199254740993]`);
    expect(text).toContain('"parameters":{"n":1152921504606846977}');
    expect(exactNumbers(text)).toMatchObject({ outputs: [{ data: [INT64_MAX, INT64_MIN, 9007199254740993n, -1n] }, { data: [UINT64_MAX, 9007199254740993n] }] });
  });

  it('writes them exactly among the JSON outputs of a mixed binary/JSON answer', () => {
    const floats: Tensor = { name: 'f', datatype: 'FP32', shape: [2], data: Float32Array.from([0.5, NaN]) };
    const answer = encodeBinaryResponse({ model_name: 'm', model_version: '1', outputs: [...outputs, floats] }, new Set(['u']));
    const header = answer.body.subarray(0, answer.headerLength).toString();
    expect(header).toContain(`"data":[${INT64_MAX},${INT64_MIN},9007199254740993,-1]`);
    expect(header).toContain('"data":[0.5,"NaN"]');
    expect(exactNumbers(header)).toMatchObject({ outputs: [{ name: 'i', data: [INT64_MAX, INT64_MIN, 9007199254740993n, -1n] }, { name: 'u', parameters: { binary_data_size: 16n } }, { name: 'f' }] });
    expect(answer.body.length).toBe(answer.headerLength + 16);
  });

  it('writes them exactly in V1 predictions, one row each', () => {
    const single = encodeV1Predictions([outputs[0]!]);
    expect(single).toBe(`{"predictions":[[${INT64_MAX},${INT64_MIN}],[9007199254740993,-1]]}`);
    const named = encodeV1Predictions(outputs);
    expect(named).toBe(`{"predictions":[{"i":[${INT64_MAX},${INT64_MIN}],"u":[${UINT64_MAX}]},{"i":[9007199254740993,-1],"u":[9007199254740993]}]}`);
  });

  it('reads V1 instances with long integers exactly', () => {
    const instances = parseV1Body(parseV1JsonBody(`{"instances":[[${INT64_MAX}, 1], [2, -9007199254740993]]}`));
    const request = decodeV1Instances(instances, [{ name: 'ids', datatype: 'INT64', shape: [-1, 2] }]);
    expect(Array.from(request.inputs[0]!.data as BigInt64Array)).toEqual([INT64_MAX, 1n, 2n, -9007199254740993n]);
  });
});
