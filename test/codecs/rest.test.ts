// The codec findings end to end through a real in-process server and its REST door.
import { parse as parseLossless } from 'lossless-json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { makeRepository, startInProcess } from '../support/server.js';

const TYPES = ['INT64', 'UINT64', 'FP16', 'FP32', 'FP64'];
// One model per datatype, returning its input unchanged: what comes back is what was decoded.
const echoConfig = (datatype: string) => `runtime: js
max_batch_size: 0
inputs:
  - { name: ${datatype.toLowerCase()}, datatype: ${datatype}, shape: [-1, -1] }
outputs:
  - { name: ${datatype.toLowerCase()}, datatype: ${datatype}, shape: [-1, -1] }
warmup: []
`;
const ECHO_MODEL = `export function predict(inputs) { return Object.values(inputs); }`;
const echo = (datatype: string) => `/v2/models/echo_${datatype.toLowerCase()}/infer`;

// Answers 64-bit integers at the ends of their ranges, whatever it is given.
const WIDE_CONFIG = `runtime: js
max_batch_size: 0
inputs:
  - { name: x, datatype: FP32, shape: [-1, 1] }
outputs:
  - { name: signed, datatype: INT64, shape: [-1, 2] }
  - { name: unsigned, datatype: UINT64, shape: [-1, 1] }
warmup: []
`;
const WIDE_MODEL = `export function predict() {
  return {
    signed: { datatype: 'INT64', shape: [2, 2], data: BigInt64Array.from([2n ** 63n - 1n, -(2n ** 63n), 9007199254740993n, -1n]) },
    unsigned: { datatype: 'UINT64', shape: [2, 1], data: BigUint64Array.from([2n ** 64n - 1n, 2n ** 53n + 1n]) },
  };
}`;

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    ...Object.fromEntries(TYPES.map((d) => [`echo_${d.toLowerCase()}`, { config: echoConfig(d), files: { '1/model.mjs': ECHO_MODEL } }])),
    wide: { config: WIDE_CONFIG, files: { '1/model.mjs': WIDE_MODEL } },
  });
  ({ server, url } = await startInProcess(repo));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

const exact = (text: string): any => parseLossless(text, null, (t) => (/^-?\d+$/.test(t) ? BigInt(t) : Number(t)));
const WIDE_REQUEST = '{"inputs":[{"name":"x","datatype":"FP32","shape":[2,1],"data":[1,2]}]}';

describe('64-bit integers over REST', () => {
  it('JSON answer: exact digits', async () => {
    const r = await post('/v2/models/wide/infer', WIDE_REQUEST);
    expect(r.status).toBe(200);
    const text = r.body.toString();
    expect(text).toContain('"data":[9223372036854775807,-9223372036854775808,9007199254740993,-1]');
    expect(text).toContain('"data":[18446744073709551615,9007199254740993]');
  });

  it('mixed binary/JSON answer: the JSON outputs keep exact digits', async () => {
    const request = WIDE_REQUEST.replace('}]}', '}],"outputs":[{"name":"signed"},{"name":"unsigned","parameters":{"binary_data":true}}]}');
    const r = await post('/v2/models/wide/infer', request);
    expect(r.status).toBe(200);
    const headerLength = Number(r.headers.get('inference-header-content-length'));
    const header = r.body.subarray(0, headerLength).toString();
    expect(exact(header).outputs[0]).toEqual({ name: 'signed', datatype: 'INT64', shape: [2n, 2n], data: [2n ** 63n - 1n, -(2n ** 63n), 9007199254740993n, -1n] });
    const raw = r.body.subarray(headerLength);
    expect(Array.from(new BigUint64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)))).toEqual([2n ** 64n - 1n, 2n ** 53n + 1n]);
  });

  it('V1 predictions: exact digits', async () => {
    const r = await post('/v1/models/wide:predict', '{"instances":[[1],[2]]}');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(
      '{"predictions":[{"signed":[9223372036854775807,-9223372036854775808],"unsigned":[18446744073709551615]},{"signed":[9007199254740993,-1],"unsigned":[9007199254740993]}]}',
    );
  });

  it('JSON inputs of a binary-extension request: 2^63 - 1 and 2^64 - 1 sent as numbers arrive exactly', async () => {
    const binary = (text: string) => {
      const header = Buffer.from(text);
      return { body: header, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
    };
    const signed = binary('{"inputs":[{"name":"int64","datatype":"INT64","shape":[1,3],"data":[9223372036854775807,-9223372036854775808,9007199254740993]}]}');
    const r1 = await post(echo('INT64'), signed.body, signed.headers);
    expect(r1.status, r1.body.toString()).toBe(200);
    expect(exact(r1.body.toString()).outputs[0].data).toEqual([2n ** 63n - 1n, -(2n ** 63n), 9007199254740993n]);
    const unsigned = binary('{"inputs":[{"name":"uint64","datatype":"UINT64","shape":[1,2],"data":[18446744073709551615,"9007199254740993"]}]}');
    const r2 = await post(echo('UINT64'), unsigned.body, unsigned.headers);
    expect(r2.status, r2.body.toString()).toBe(200);
    expect(exact(r2.body.toString()).outputs[0].data).toEqual([2n ** 64n - 1n, 9007199254740993n]);
  });

  it('out of range in a binary-extension request: 400 naming the element and the value as sent', async () => {
    const header = Buffer.from('{"inputs":[{"name":"int64","datatype":"INT64","shape":[1,2],"data":[0,9223372036854775808]}]}');
    const r = await post(echo('INT64'), header, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body.toString()).error).toMatch(/input 'int64': element 1 is 9223372036854775808, outside the INT64 range/);
  });
});

describe('values that do not fit their datatype over REST', () => {
  const one = (datatype: string, data: string, shape = '[1,2]') =>
    `{"inputs":[{"name":"${datatype.toLowerCase()}","datatype":"${datatype}","shape":${shape},"data":${data}}]}`;

  it.each([
    ['FP16', '[1e6,70000]', /input 'fp16': element 0 is 1000000, outside the finite FP16 range/],
    ['FP32', '[1,3.5e38]', /input 'fp32': element 1 is 3.5e\+38, outside the finite FP32 range/],
    ['FP32', '[1e309,1]', /input 'fp32': element 0 is Infinity \(a number beyond the FP64 range\)/],
    ['FP64', '[1,-1e309]', /input 'fp64': element 1 is -Infinity/],
    ['INT64', '[1,2.5]', /input 'int64': element 1 is 2.5, not an integer/],
  ])('%s %s: 400', async (datatype, data, message) => {
    const r = await post(echo(datatype), one(datatype, data));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body.toString()).error).toMatch(message);
  });

  it('explicit non-finite spellings are still taken', async () => {
    const r = await post(echo('FP32'), one('FP32', '["NaN","-Infinity"]'));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString()).outputs[0].data).toEqual(['NaN', '-Infinity']);
  });

  it('ragged nested data whose total count matches the shape: 400 naming where it differs', async () => {
    const r = await post(echo('FP32'), one('FP32', '[[1,2],[3,4,5,6]]', '[2,3]'));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body.toString()).error).toBe("input 'fp32': data[0] holds 2 elements, but dimension 1 of shape [2, 3] is 3");
    const ok = await post(echo('FP32'), one('FP32', '[[1,2,3],[4,5,6]]', '[2,3]'));
    expect(ok.status).toBe(200);
  });
});
