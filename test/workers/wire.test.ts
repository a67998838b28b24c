// The compact form of a group of runs: what goes in comes out, names and datatypes by index,
// data as views of the one buffer; groups it cannot hold are told apart.
import { describe, expect, it } from 'vitest';
import { packTensors } from '../../src/core/tensor.js';
import type { Tensor } from '../../src/core/types.js';
import { fitsPacked, packOutcomes, packRuns, unpackOutcomes, unpackRuns } from '../../src/workers/wire.js';

const features = (k: number): Tensor => ({ name: 'features', datatype: 'FP32', shape: [1, 3], data: Float32Array.from([k, k + 0.5, -k]) });

describe('packed groups of runs', () => {
  it('carries inputs, requested outputs and request ids of every run', () => {
    const runs = [
      { inputs: [features(1), { name: 'mask', datatype: 'BOOL' as const, shape: [2], data: Uint8Array.from([1, 0]) }], outputs: ['probabilities', 'label'], requestIds: ['a-1'] },
      { inputs: [features(2)], outputs: ['label'], requestIds: ['b-2', 'b-3'] },
    ];
    const memory = packTensors(runs.map((r) => r.inputs));
    expect(fitsPacked(runs.map((r) => r.inputs), memory)).toBe(true);
    const group = packRuns(runs, memory!);
    // Each name once: features, mask, probabilities, label, then the three ids.
    expect(group.strings).toEqual(['features', 'mask', 'probabilities', 'label', 'a-1', 'b-2', 'b-3']);
    const back = unpackRuns(structuredClone(group, { transfer: [group.memory] }));
    expect(back.map((r) => r.outputs)).toEqual([['probabilities', 'label'], ['label']]);
    expect(back.map((r) => r.requestIds)).toEqual([['a-1'], ['b-2', 'b-3']]);
    expect(back[0]!.inputs.map((t) => [t.name, t.datatype, t.shape])).toEqual([
      ['features', 'FP32', [1, 3]],
      ['mask', 'BOOL', [2]],
    ]);
    expect(Array.from(back[0]!.inputs[0]!.data as Float32Array)).toEqual([1, 1.5, -1]);
    expect(Array.from(back[0]!.inputs[1]!.data as Uint8Array)).toEqual([1, 0]);
    expect(Array.from(back[1]!.inputs[0]!.data as Float32Array)).toEqual([2, 2.5, -2]);
    expect((back[1]!.inputs[0]!.data as Float32Array).buffer).toBe((back[0]!.inputs[0]!.data as Float32Array).buffer);
  });

  it('carries outcomes: outputs with their timings, and failures with their message and cause', () => {
    const outputs: Tensor[] = [
      { name: 'probabilities', datatype: 'FP32', shape: [1, 2], data: Float32Array.from([0.25, 0.75]) },
      { name: 'label', datatype: 'INT64', shape: [1], data: BigInt64Array.from([1n]) },
    ];
    const memory = packTensors([outputs]);
    expect(fitsPacked([outputs], memory)).toBe(true);
    const group = packOutcomes(
      [
        { outputs, timings: { inputNs: 1.5, inferNs: 20_000.25, outputNs: 3 } },
        { failed: 'the model refused the input', inputCaused: true },
        { failed: 'session crashed', inputCaused: false },
      ],
      memory!,
    );
    const back = unpackOutcomes(structuredClone(group, { transfer: [group.memory] }));
    expect(back).toHaveLength(3);
    const first = back[0] as { outputs: Tensor[]; timings: unknown };
    expect(first.timings).toEqual({ inputNs: 1.5, inferNs: 20_000.25, outputNs: 3 });
    expect(first.outputs.map((t) => [t.name, t.datatype, t.shape])).toEqual([
      ['probabilities', 'FP32', [1, 2]],
      ['label', 'INT64', [1]],
    ]);
    expect(Array.from(first.outputs[0]!.data as Float32Array)).toEqual([0.25, 0.75]);
    expect(Array.from(first.outputs[1]!.data as BigInt64Array)).toEqual([1n]);
    expect(back[1]).toEqual({ failed: 'the model refused the input', inputCaused: true });
    expect(back[2]).toEqual({ failed: 'session crashed', inputCaused: false });
  });

  it('does not take BYTES data, tensors with parameters, or data outside the group buffer', () => {
    const bytes: Tensor = { name: 's', datatype: 'BYTES', shape: [1], data: [Uint8Array.from([104, 105])] };
    expect(fitsPacked([[features(1), bytes]], packTensors([[features(1), bytes]]))).toBe(false);
    const withParameters = { ...features(1), parameters: { binary_data: true } };
    expect(fitsPacked([[withParameters]], packTensors([[withParameters]]))).toBe(false);
    const large: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 32768], data: new Float32Array(32768) };
    const small = features(3);
    const memory = packTensors([[small], [large]]);
    expect(fitsPacked([[small], [large]], memory)).toBe(false);
    expect(fitsPacked([[small]], memory)).toBe(true);
    expect(fitsPacked([], undefined)).toBe(false);
  });
});
