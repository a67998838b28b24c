import { describe, expect, it } from 'vitest';
import { parseRange } from '../../src/loadgen/range.js';
import { isStable } from '../../src/loadgen/stability.js';
import {
  inputsFromJson,
  inputsFromRows,
  parseCsv,
  parseShapeArg,
  randomInputs,
  resolveShape,
} from '../../src/loadgen/inputs.js';
import { toHalfBits } from '../../src/core/datatypes.js';
import { encodeBinaryRequest, encodeJsonRequest, tensorBytes } from '../../src/loadgen/payload.js';
import { mergeSplits, parseStats, statsDelta } from '../../src/loadgen/stats.js';
import { LatencyHistogram } from '../../src/loadgen/histogram.js';
import type { TensorSpec } from '../../src/loadgen/types.js';

describe('parseRange', () => {
  it('reads geometric, linear, list and single forms', () => {
    expect(parseRange('1:64:x2', { integer: true, what: 'c' })).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(parseRange('100:400:100', { integer: false, what: 'r' })).toEqual([100, 200, 300, 400]);
    expect(parseRange('1,16,64', { integer: true, what: 'c' })).toEqual([1, 16, 64]);
    expect(parseRange('8', { integer: true, what: 'c' })).toEqual([8]);
    expect(parseRange('1:3', { integer: true, what: 'c' })).toEqual([1, 2, 3]);
    expect(parseRange('0.5:1.5:0.5', { integer: false, what: 'r' })).toEqual([0.5, 1, 1.5]);
  });
  it('rejects nonsense', () => {
    expect(() => parseRange('0', { integer: true, what: 'c' })).toThrow(/positive/);
    expect(() => parseRange('4:2', { integer: true, what: 'c' })).toThrow(/below/);
    expect(() => parseRange('1:8:x1', { integer: true, what: 'c' })).toThrow(/above 1/);
    expect(() => parseRange('1.5', { integer: true, what: 'c' })).toThrow(/integer/);
    expect(() => parseRange('a,b', { integer: true, what: 'c' })).toThrow();
  });
});

describe('isStable', () => {
  const w = (throughput: number, p99Us: number) => ({ throughput, p99Us });
  it('needs three windows', () => {
    expect(isStable([w(100, 1000), w(100, 1000)], 10)).toBe(false);
    expect(isStable([w(100, 1000), w(100, 1000), w(100, 1000)], 10)).toBe(true);
  });
  it('looks at the last three windows only', () => {
    expect(isStable([w(10, 9000), w(100, 1000), w(104, 1030), w(97, 980)], 10)).toBe(true);
    expect(isStable([w(100, 1000), w(104, 1030), w(97, 980), w(10, 9000)], 10)).toBe(false);
  });
  it('checks throughput and p99 each within the percentage of their mean', () => {
    expect(isStable([w(100, 1000), w(125, 1000), w(100, 1000)], 10)).toBe(false);
    expect(isStable([w(100, 1000), w(100, 1300), w(100, 1000)], 10)).toBe(false);
    expect(isStable([w(100, 1000), w(100, 1300), w(100, 1000)], 25)).toBe(true);
  });
  it('never calls a window without successes stable', () => {
    expect(isStable([w(0, 0), w(0, 0), w(0, 0)], 10)).toBe(false);
  });
});

describe('shapes', () => {
  const spec: TensorSpec = { name: 'features', datatype: 'FP32', shape: [-1, 30] };
  it('fills a dynamic batch dimension with the batch size, other dynamic dims with 1', () => {
    expect(resolveShape(spec, {})).toEqual([1, 30]);
    expect(resolveShape(spec, { batchSize: 8 })).toEqual([8, 30]);
    expect(resolveShape({ name: 't', datatype: 'INT64', shape: [-1, -1] }, { batchSize: 2 })).toEqual([2, 1]);
    expect(resolveShape({ name: 't', datatype: 'FP32', shape: [1, 3] }, { batchSize: 4 })).toEqual([1, 3]);
  });
  it('takes --shape and checks it against the model', () => {
    expect(parseShapeArg('features:1,30')).toEqual({ name: 'features', shape: [1, 30] });
    expect(resolveShape(spec, { shapes: { features: [4, 30] } })).toEqual([4, 30]);
    expect(() => resolveShape(spec, { shapes: { features: [4, 31] } })).toThrow(/fixes it at 30/);
    expect(() => resolveShape(spec, { shapes: { features: [30] } })).toThrow(/dimensions/);
    expect(() => parseShapeArg('features')).toThrow();
  });
});

describe('random inputs', () => {
  it('are deterministic for a seed and typed per datatype', () => {
    const specs: TensorSpec[] = [
      { name: 'a', datatype: 'FP32', shape: [-1, 3] },
      { name: 'b', datatype: 'INT64', shape: [-1] },
      { name: 'c', datatype: 'BOOL', shape: [2] },
      { name: 'd', datatype: 'BYTES', shape: [1] },
    ];
    const x = randomInputs(specs, { seed: 7, count: 2, batchSize: 2 });
    const y = randomInputs(specs, { seed: 7, count: 2, batchSize: 2 });
    expect(x).toEqual(y);
    expect(x).toHaveLength(2);
    expect(x[0]![0]!.shape).toEqual([2, 3]);
    expect(x[0]![0]!.values).toHaveLength(6);
    expect(x[0]![1]!.values.every((v) => Number.isInteger(v))).toBe(true);
    expect(x[0]![2]!.values.every((v) => v === 0 || v === 1)).toBe(true);
    expect(typeof x[0]![3]!.values[0]).toBe('string');
    expect(x[0]![0]!.values).not.toEqual(x[1]![0]!.values);
  });
});

describe('CSV input', () => {
  const csv = 'a,b,"c",label\n1,2,3,0\n4,5,6,1\n\n7,8,9,0\n';
  const spec: TensorSpec[] = [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }];
  it('parses numeric columns and excludes some', () => {
    const t = parseCsv(csv, ['label']);
    expect(t.columns).toEqual(['a', 'b', 'c']);
    expect(t.rows).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
  });
  it('reports bad cells and unknown columns', () => {
    expect(() => parseCsv('a,b\n1,x\n')).toThrow(/line 2, column b/);
    expect(() => parseCsv('a,b\n1,2\n', ['zz'])).toThrow(/no such column/);
    expect(() => parseCsv('a,b\n1\n')).toThrow(/fields/);
  });
  it('groups rows into batches, wrapping around', () => {
    const reqs = inputsFromRows(spec, parseCsv(csv, ['label']), { batchSize: 2 });
    expect(reqs).toHaveLength(2);
    expect(reqs[0]![0]).toMatchObject({ name: 'x', shape: [2, 3], values: [1, 2, 3, 4, 5, 6] });
    expect(reqs[1]![0]).toMatchObject({ shape: [2, 3], values: [7, 8, 9, 1, 2, 3] });
  });
  it('rejects a row width that does not fit the input', () => {
    expect(() => inputsFromRows(spec, parseCsv(csv), {})).toThrow(/4 values/);
  });
  it('maps columns to inputs by name for several inputs', () => {
    const specs: TensorSpec[] = [
      { name: 'p', datatype: 'FP32', shape: [-1, 2] },
      { name: 'q', datatype: 'INT64', shape: [-1, 1] },
    ];
    const reqs = inputsFromRows(specs, parseCsv('p.0,p.1,q\n1,2,3\n'), {});
    expect(reqs[0]!.map((t) => [t.name, t.shape, t.values])).toEqual([
      ['p', [1, 2], [1, 2]],
      ['q', [1, 1], [3]],
    ]);
  });
});

describe('JSON input', () => {
  const spec: TensorSpec[] = [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }];
  it('reads perf_analyzer-style samples and batches them', () => {
    const doc = JSON.stringify({ data: [{ x: [1, 2] }, { x: [3, 4] }, { x: { content: [5, 6] } }] });
    const one = inputsFromJson(doc, spec, {});
    expect(one.map((r) => r[0]!.values)).toEqual([[1, 2], [3, 4], [5, 6]]);
    const two = inputsFromJson(doc, spec, { batchSize: 2 });
    expect(two).toHaveLength(1);
    expect(two[0]![0]).toMatchObject({ shape: [2, 2], values: [1, 2, 3, 4] });
  });
  it('reads entries with their own shape as whole tensors', () => {
    const doc = JSON.stringify({ data: [{ x: { content: [[1, 2], [3, 4], [5, 6]], shape: [3, 2] } }] });
    const r = inputsFromJson(doc, spec, {});
    expect(r[0]![0]).toMatchObject({ shape: [3, 2], values: [1, 2, 3, 4, 5, 6] });
  });
  it('reads OIP requests, alone or in an array', () => {
    const req = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [[9, 8]] }] };
    expect(inputsFromJson(JSON.stringify(req), spec, {})[0]![0]).toMatchObject({ values: [9, 8], shape: [1, 2] });
    expect(inputsFromJson(JSON.stringify([req, req]), spec, {})).toHaveLength(2);
  });
  it('explains what is wrong', () => {
    expect(() => inputsFromJson('{', spec, {})).toThrow(/not valid JSON/);
    expect(() => inputsFromJson('{"data": []}', spec, {})).toThrow(/non-empty/);
    expect(() => inputsFromJson('{"data": [{"y": [1,2]}]}', spec, {})).toThrow(/lacks input x/);
    expect(() => inputsFromJson('{"data": [{"x": [1,2,3]}]}', spec, {})).toThrow(/need 2 values, got 3/);
  });
});

describe('payload encoding', () => {
  const t = { name: 'x', datatype: 'FP32', shape: [1, 2], values: [0.5, -2] };
  it('writes OIP JSON', () => {
    expect(JSON.parse(encodeJsonRequest([t]).toString())).toEqual({
      inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.5, -2] }],
    });
    const b = { name: 'b', datatype: 'BOOL', shape: [2], values: [1, 0] };
    expect(JSON.parse(encodeJsonRequest([b]).toString()).inputs[0].data).toEqual([true, false]);
  });
  it('writes the binary extension: JSON header then little-endian tensors', () => {
    const { body, headerLength } = encodeBinaryRequest([t], { binaryOutput: true });
    const head = JSON.parse(body.subarray(0, headerLength).toString());
    expect(head.inputs[0].parameters.binary_data_size).toBe(8);
    expect(head.parameters.binary_data_output).toBe(true);
    expect(body.length).toBe(headerLength + 8);
    expect(body.readFloatLE(headerLength)).toBe(0.5);
    expect(body.readFloatLE(headerLength + 4)).toBe(-2);
  });
  it('encodes integers, BYTES and half floats', () => {
    expect(tensorBytes({ name: 'i', datatype: 'INT64', shape: [1], values: [-3] }).readBigInt64LE(0)).toBe(-3n);
    const s = tensorBytes({ name: 's', datatype: 'BYTES', shape: [2], values: ['ab', 'c'] });
    expect([...s]).toEqual([2, 0, 0, 0, 97, 98, 1, 0, 0, 0, 99]);
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7c00);
    expect(toHalfBits(5.960464477539063e-8)).toBe(1);
  });
});

describe('server statistics', () => {
  const doc = (n: number, scale: number) => ({
    model_stats: [
      {
        inference_stats: {
          success: { count: n, ns: n * 1_000_000 * scale },
          queue: { count: n, ns: n * 200_000 * scale },
          compute_input: { count: n, ns: n * 10_000 },
          compute_infer: { count: String(n), ns: String(n * 500_000) },
          compute_output: { count: n, ns: n * 20_000 },
        },
      },
    ],
  });
  it('splits the window delta into queue and compute per request', () => {
    const a = parseStats(doc(100, 1))!;
    const b = parseStats(doc(300, 1))!;
    const d = statsDelta(a, b)!;
    expect(d).toMatchObject({ requests: 200, requestUs: 1000, queueUs: 200, computeInferUs: 500, computeUs: 530 });
    expect(statsDelta(b, b)).toBeUndefined();
    expect(parseStats({})).toBeUndefined();
    const m = mergeSplits([d, { ...d, requests: 600, queueUs: 400 }, undefined])!;
    expect(m.requests).toBe(800);
    expect(m.queueUs).toBe(350);
  });
});

describe('LatencyHistogram', () => {
  it('keeps percentiles within 0.1% in fixed memory and merges', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 1; i <= 10_000; i++) (i % 2 ? a : b).record(i * 10);
    const m = LatencyHistogram.merge([a, b]);
    const s = m.summary();
    expect(s.count).toBe(10_000);
    expect(Math.abs(s.p50Us - 50_000) / 50_000).toBeLessThan(0.002);
    expect(Math.abs(s.p99Us - 99_000) / 99_000).toBeLessThan(0.002);
    expect(Math.abs(s.maxUs - 100_000) / 100_000).toBeLessThan(0.002);
    expect(new LatencyHistogram().summary().p99Us).toBe(0);
  });
});
