// The single-pass JSON request reader against the general decoder (JSON.parse, then the
// tensors): random valid and invalid bodies must decode to the same tensors, bit for bit, or
// fail with the same error; and valid bodies must be read by the single pass itself.
import { describe, expect, it } from 'vitest';
import { DATATYPES, type Datatype } from '../../src/core/datatypes.js';
import type { InferenceRequest } from '../../src/core/types.js';
import { decodeInferRequest, parseJsonBody } from '../../src/codecs/json.js';
import { scanNumber, scanned } from '../../src/codecs/json-number.js';
import { decodeJsonInferRequest, readInferRequest } from '../../src/codecs/json-request.js';
import { rng } from '../../src/loadgen/inputs.js';

/** Seeded, so that a failure can be replayed. */
const random = rng;

type Outcome = { ok: unknown } | { error: string };

/** A decoded request with every tensor's data as its bytes: equal means bit-for-bit equal. */
function canonical(request: InferenceRequest): unknown {
  return {
    ...request,
    inputs: request.inputs.map((t) => ({
      ...t,
      data: Array.isArray(t.data)
        ? (t.data as Uint8Array[]).map((b) => Buffer.from(b).toString('hex'))
        : `${t.data.constructor.name}:${Buffer.from((t.data as Uint8Array).buffer, (t.data as Uint8Array).byteOffset, (t.data as Uint8Array).byteLength).toString('hex')}`,
    })),
  };
}

function outcome(decode: () => InferenceRequest): Outcome {
  try {
    return { ok: canonical(decode()) };
  } catch (error) {
    return { error: `${(error as Error).constructor.name}: ${(error as Error).message}` };
  }
}

const general = (body: Buffer) => outcome(() => decodeInferRequest(parseJsonBody(body)));
const singlePass = (body: Buffer) => outcome(() => decodeJsonInferRequest(body));

/** JSON text of an outcome that tells BigInts, -0 and numbers apart. */
const show = (o: Outcome) =>
  JSON.stringify(o, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? '-0 (number)' : v));

function expectSame(body: Buffer): Outcome {
  const expected = general(body);
  const got = singlePass(body);
  if (show(got) !== show(expected)) {
    expect({ body: body.toString(), got }).toEqual({ body: body.toString(), got: expected });
  }
  return expected;
}

/** Number literals of every form JSON allows, with the values a client sends. */
function numberText(r: () => number, integer: boolean): string {
  const k = Math.floor(r() * 10);
  if (integer || k === 0) return String(Math.floor((r() - 0.5) * 2 ** Math.floor(r() * 40)));
  if (k === 1) return String(Math.fround((r() - 0.5) * 10 ** Math.floor(r() * 12 - 6)));
  if (k === 2) return ((r() - 0.5) * 1000).toExponential(Math.floor(r() * 20));
  if (k === 3) return `${r() < 0.5 ? '-' : ''}${Math.floor(r() * 1000)}.${String(Math.floor(r() * 1e9)).padStart(9, '0')}${Math.floor(r() * 1e6)}`;
  if (k === 4) return `${Math.floor(r() * 10)}E${r() < 0.5 ? '+' : '-'}${Math.floor(r() * 30)}`;
  return String((r() - 0.5) * 10 ** Math.floor(r() * 10 - 5));
}

function elementText(r: () => number, datatype: Datatype): string {
  switch (datatype) {
    case 'BOOL':
      return r() < 0.8 ? (r() < 0.5 ? 'true' : 'false') : r() < 0.5 ? '1' : '0';
    case 'BYTES': {
      const texts = ['"a"', '""', '"héllo"', '"tab\\there"', '"\\u00e9\\ud83d\\ude00"', '"quote \\" and \\\\"', '"日本"'];
      return texts[Math.floor(r() * texts.length)]!;
    }
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
      return String(Math.floor(r() * 200));
    case 'INT8':
    case 'INT16':
    case 'INT32':
      return String(Math.floor((r() - 0.5) * 200));
    case 'INT64':
    case 'UINT64': {
      const k = Math.floor(r() * 5);
      const sign = datatype === 'INT64' && r() < 0.5 ? '-' : '';
      if (k === 0) return `${sign}${BigInt(Math.floor(r() * 2 ** 31)) * 2n ** 31n + BigInt(Math.floor(r() * 2 ** 31))}`;
      if (k === 1) return `"${sign}${Math.floor(r() * 1e6)}"`;
      if (k === 2) return `${Math.floor(r() * 100)}.0`;
      return `${sign}${Math.floor(r() * 1e6)}`;
    }
    case 'FP16':
    case 'BF16':
      return r() < 0.1 ? '"NaN"' : String(Math.round((r() - 0.5) * 2000) / 8);
    default:
      return r() < 0.05 ? ['"NaN"', '"Infinity"', '"-Infinity"', '"inf"'][Math.floor(r() * 4)]! : numberText(r, false);
  }
}

const space = (r: () => number) => [' ', '', '', '\n  ', '\t', '\r\n'][Math.floor(r() * 6)]!;

function nest(values: string[], shape: number[], r: () => number): string {
  if (shape.length <= 1) return `[${values.join(`,${space(r)}`)}]`;
  const inner = values.length / shape[0]!;
  const parts: string[] = [];
  for (let i = 0; i < shape[0]!; i++) parts.push(nest(values.slice(i * inner, (i + 1) * inner), shape.slice(1), r));
  return `[${parts.join(',')}]`;
}

function parametersText(r: () => number): string {
  const values = ['"x"', '1', '-2.5', 'true', 'false', '9007199254740993', '18446744073709551615', '1e400', '"\\u00e9"', '0.1'];
  const n = Math.floor(r() * 3);
  const entries = Array.from({ length: n }, (_, i) => `"p${i}":${space(r)}${values[Math.floor(r() * values.length)]}`);
  return `{${entries.join(',')}}`;
}

function tensorText(r: () => number, index: number): string {
  const datatype = DATATYPES[Math.floor(r() * DATATYPES.length)]!;
  const rank = Math.floor(r() * 4);
  const shape = Array.from({ length: rank }, () => 1 + Math.floor(r() * 4));
  const count = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: count }, () => elementText(r, datatype));
  let data: string;
  if (count === 1 && r() < 0.2) data = values[0]!;
  else if (r() < 0.5 && rank > 1) data = nest(values, shape, r);
  else data = `[${values.join(`,${space(r)}`)}]`;
  const fields = [`"name":"in${index}"`, `"datatype":"${datatype}"`, `"shape":[${shape.join(',')}]`, `"data":${space(r)}${data}`];
  if (r() < 0.3) fields.push(`"parameters":${parametersText(r)}`);
  if (r() < 0.2) fields.push(`"extra":{"nested":[1,{"deep":null}],"s":"\\n"}`);
  // Any key order: the data may come before the datatype or the shape.
  for (let i = fields.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [fields[i], fields[j]] = [fields[j]!, fields[i]!];
  }
  return `{${space(r)}${fields.join(`,${space(r)}`)}${space(r)}}`;
}

function requestText(r: () => number): string {
  const inputs = Array.from({ length: 1 + Math.floor(r() * 3) }, (_, i) => tensorText(r, i));
  const fields = [`"inputs":[${inputs.join(',')}]`];
  if (r() < 0.3) fields.push(`"id":"req-${Math.floor(r() * 1000)}"`);
  if (r() < 0.3) fields.push(`"parameters":${parametersText(r)}`);
  if (r() < 0.3) fields.push(`"outputs":[{"name":"out"},{"name":"b","parameters":${parametersText(r)}}]`);
  if (r() < 0.5) fields.reverse();
  return `${space(r)}{${fields.join(',')}}${space(r)}`;
}

/** A valid body made invalid (or not) by one edit: a byte deleted, inserted or replaced, a cut. */
function mutate(text: string, r: () => number): string {
  const at = Math.floor(r() * text.length);
  const bytes = ['', ',', ']', '[', '}', '{', '"', '-', '0', '.', 'e', 'x', ' ', ':', 'null', '1e999', '\u0001', '\\', 'true'];
  const piece = bytes[Math.floor(r() * bytes.length)]!;
  switch (Math.floor(r() * 4)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + piece + text.slice(at);
    case 2:
      return text.slice(0, at) + piece + text.slice(at + 1);
    default:
      return text.slice(0, at);
  }
}

describe('single-pass JSON request reader', () => {
  it('decodes random valid requests exactly as the general decoder, by itself', () => {
    const r = random(1);
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const body = Buffer.from(requestText(r));
      const expected = expectSame(body);
      if ('ok' in expected) {
        decoded++;
        // The single pass took it (no fall-back to the general decoder).
        expect(readInferRequest(body), body.toString()).toBeDefined();
      }
    }
    // Most generated bodies are valid (a few hold values such as 1e400 that do not fit).
    expect(decoded).toBeGreaterThan(2000);
  });

  it('fails random invalid requests with the same error as the general decoder', () => {
    const r = random(2);
    let refused = 0;
    for (let i = 0; i < 6000; i++) {
      const body = Buffer.from(mutate(requestText(r), r));
      if ('error' in expectSame(body)) refused++;
    }
    expect(refused).toBeGreaterThan(3000);
  });

  it('refuses what does not fit the datatype or the shape with the same messages', () => {
    const cases = [
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,2,3]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[[1,2],[3]]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[[1,2],3,4]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[3.5e38]}]}',
      '{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1e400]}]}',
      '{"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[1.5]}]}',
      '{"inputs":[{"name":"x","datatype":"UINT8","shape":[1],"data":[256]}]}',
      '{"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[9223372036854775808]}]}',
      '{"inputs":[{"name":"x","datatype":"UINT64","shape":[1],"data":[-1]}]}',
      '{"inputs":[{"name":"x","datatype":"BOOL","shape":[1],"data":[2]}]}',
      '{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":[1]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[null]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":["1"]}]}',
      '{"inputs":[{"name":"x","datatype":"FLOAT","shape":[1],"data":[1]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[1]}]}',
      '{"inputs":[{"name":"","datatype":"FP32","shape":[1],"data":[1]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]}',
      '{"inputs":[]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"id":5}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"parameters":{"a":[1]}}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"outputs":[{"nam":"y"}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"inputs":[]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[01]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1.]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]} x',
      '\ufeff{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}',
      '[1,2]',
      '',
    ];
    for (const text of cases) expect('error' in expectSame(Buffer.from(text)), text).toBe(true);
  });

  it('keeps duplicate keys, INT64 beyond 2^53 and parameters exact as the general decoder does', () => {
    const cases = [
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"data":[2]}]}',
      '{"inputs":[{"name":"ids","datatype":"INT64","shape":[3],"data":[9223372036854775807,"-9223372036854775808",9007199254740993]}]}',
      '{"inputs":[{"name":"ids","datatype":"UINT64","shape":[2],"data":[18446744073709551615,1e3]}]}',
      '{"inputs":[{"name":"ids","datatype":"UINT64","shape":[4],"data":[-0,0,4294967296,9007199254740991]}]}',
      '{"inputs":[{"name":"ids","datatype":"INT64","shape":[8],"data":[-1,-4294967296,-4294967297,4294967295,9007199254740991,-9007199254740991,-0,2.0]}]}',
      '{"inputs":[{"name":"ids","datatype":"INT64","shape":[2,2],"data":[[1,"2"],[-9007199254740993,4]]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[123456789012345678901234567890,-0]}],"parameters":{"seed":12345678901234567890}}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[0,9007199254740993],"data":[]}]}',
      '{"inputs":[{"data":[[1,2,3]],"name":"x","shape":[1,3],"datatype":"FP64"}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}',
    ];
    for (const text of cases) expect('ok' in expectSame(Buffer.from(text)), text).toBe(true);
  });
});

describe('JSON number reading', () => {
  const read = (text: string) => {
    const bytes = Buffer.from(text);
    const x = scanNumber(bytes, 0, (a, b) => bytes.toString('latin1', a, b));
    return scanned.end === bytes.length ? x : undefined;
  };

  it('gives the double JSON.parse gives, on edge cases and on random literals', () => {
    const edges = [
      '0', '-0', '0.0', '-0.0', '1e22', '1e23', '9007199254740993', '9007199254740992.5', '1.7976931348623157e308',
      '1e309', '5e-324', '2.2250738585072014e-308', '123456789012345678901234567890', '0.1', '0.30000000000000004',
      '1E5', '1e+5', '1e-5', '0e999999', '3.4028235677973366e38', '1.00000000000000011102230246251565404236316680908203125',
      '1.00000000000000011102230246251565404236316680908203124', '9999999999999999999', '99999999999999999999e-22',
      '0.8115044832229614', '-1.7925461530685425', '4.35679E-21', '1.5e-7', '0.000000000000000000001',
    ];
    for (const text of edges) expect(Object.is(read(text), JSON.parse(text)), text).toBe(true);
    const r = random(3);
    const f32 = new Float32Array(1);
    for (let i = 0; i < 200_000; i++) {
      let text: string;
      const k = i % 4;
      if (k === 0) {
        f32[0] = (r() - 0.5) * 10 ** Math.floor(r() * 12 - 6);
        text = String(f32[0]);
      } else if (k === 1) text = String((r() - 0.5) * 10 ** Math.floor(r() * 40 - 20));
      else if (k === 2) text = `${r().toPrecision(17)}${['5', '49999', '50001', ''][Math.floor(r() * 4)]}`;
      else text = `${Math.floor(r() * 1e9)}${Math.floor(r() * 1e9)}${Math.floor(r() * 100)}e-${Math.floor(r() * 30)}`;
      const got = read(text);
      if (!Object.is(got, JSON.parse(text))) expect({ text, got }).toEqual({ text, got: JSON.parse(text) });
    }
  });

  it('gives, for FP32 data, the FP32 to which the double of JSON.parse rounds', () => {
    const r = random(4);
    const f32 = new Float32Array(1);
    const float32 = (text: string) => {
      const bytes = Buffer.from(text);
      const x = scanNumber(bytes, 0, (a, b) => bytes.toString('latin1', a, b), true);
      f32[0] = x;
      return scanned.end === bytes.length ? f32[0] : undefined;
    };
    for (let i = 0; i < 200_000; i++) {
      let text: string;
      if (i % 3 === 0) {
        f32[0] = (r() - 0.5) * 10 ** Math.floor(r() * 12 - 6);
        text = String(f32[0]);
      } else if (i % 3 === 1) {
        // Halfway between two FP32 values, and just beside it: the hard cases of double rounding.
        f32[0] = r() * 100;
        const bits = new Uint32Array(new Float32Array([f32[0]!]).buffer);
        bits[0] = bits[0]! + 1;
        const middle = (f32[0]! + new Float32Array(bits.buffer)[0]!) / 2;
        const k = Math.floor(r() * 3);
        text = [middle, middle + middle * 2 ** -52, middle - middle * 2 ** -52][k]!.toPrecision(17 + Math.floor(r() * 3));
      } else text = String((r() - 0.5) * 10 ** Math.floor(r() * 20 - 10));
      const expected = Math.fround(JSON.parse(text) as number);
      const got = float32(text);
      if (!Object.is(got, expected)) expect({ text, got }).toEqual({ text, got: expected });
    }
    for (const text of ['3.4028235677973366e38', '3.4028235677973362e38', '1.00000005960464477539', '1.0000000596046448', '1.000000059604644775390625'])
      expect(Object.is(float32(text), Math.fround(JSON.parse(text) as number)), text).toBe(true);
  });

  it('refuses what JSON does not allow', () => {
    for (const text of ['01', '1.', '.5', '+1', '-', '1e', '1e+', '--1', '-a', 'NaN', 'Infinity']) expect(read(text), text).toBeUndefined();
  });
});
