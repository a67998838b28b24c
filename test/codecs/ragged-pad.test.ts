// Padding ragged inputs in a batch writes the pad value as the input's datatype stores it.
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/batching/scheduler.js';
import type { SchedulerOptions } from '../../src/batching/types.js';
import { fromHalfBits, toHalfBits, type Datatype, type TensorData } from '../../src/core/datatypes.js';
import type { Tensor } from '../../src/core/types.js';

const base: SchedulerOptions = {
  model: 'm',
  version: '1',
  maxBatchSize: 8,
  dynamicBatching: { maxQueueDelayMicroseconds: 0, preferredBatchSizes: [] },
  instances: 1,
  maxQueueSize: 100,
  defaultQueueTimeoutMs: 0,
  priorityLevels: 1,
  defaultPriority: 1,
  ragged: {},
};

/**
 * Runs one request alone, then two of different lengths together (queued while the first runs)
 * and returns the merged input the model saw for the pair, with each caller's answer.
 */
async function padPair(datatype: Datatype, pad: number, long: TensorData, short: TensorData) {
  const seen: Tensor[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const s = new Scheduler({ ...base, ragged: { x: { kind: 'pad', value: pad } } }, async (inputs) => {
    seen.push(inputs[0]!);
    if (seen.length === 1) await gate;
    return { outputs: inputs, timings: { inputNs: 0, inferNs: 0, outputNs: 0 } };
  });
  const tensor = (data: TensorData): Tensor => ({ name: 'x', datatype, shape: [1, data.length], data });
  const first = s.submit([tensor(short)], ['x']);
  const a = s.submit([tensor(long)], ['x']);
  const b = s.submit([tensor(short)], ['x']);
  open();
  await first;
  const results = await Promise.allSettled([a, b]);
  return { merged: seen[1], results };
}

describe('ragged padding by datatype', () => {
  it('pads INT64 with a non-zero pad value', async () => {
    const { merged, results } = await padPair('INT64', -7, BigInt64Array.from([1n, 2n ** 62n, 3n]), BigInt64Array.from([4n]));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(merged!.shape).toEqual([2, 3]);
    expect(Array.from(merged!.data as BigInt64Array)).toEqual([1n, 2n ** 62n, 3n, 4n, -7n, -7n]);
  });

  it('pads UINT64 with a non-zero pad value', async () => {
    const { merged } = await padPair('UINT64', 5, BigUint64Array.from([2n ** 63n, 1n]), BigUint64Array.from([9n]));
    expect(Array.from(merged!.data as BigUint64Array)).toEqual([2n ** 63n, 1n, 9n, 5n]);
  });

  it('pads FP16 with the half-precision encoding of the pad value, not its raw bits', async () => {
    const half = (xs: number[]) => Uint16Array.from(xs, toHalfBits);
    const { merged, results } = await padPair('FP16', -1.5, half([1, 2, 3]), half([4]));
    expect(Array.from(merged!.data as Uint16Array, fromHalfBits)).toEqual([1, 2, 3, 4, -1.5, -1.5]);
    const short = results[1]!;
    expect(short.status).toBe('fulfilled');
    if (short.status === 'fulfilled') expect(Array.from(short.value.outputs[0]!.data as Uint16Array, fromHalfBits)).toEqual([4, -1.5, -1.5]);
  });

  it('pads BF16 and INT8 with their encodings', async () => {
    const bf = await padPair('BF16', 2, Uint16Array.from([0x3f80, 0x3f80]), Uint16Array.from([0x3f80]));
    expect(Array.from(bf.merged!.data as Uint16Array)).toEqual([0x3f80, 0x3f80, 0x3f80, 0x4000]);
    const i8 = await padPair('INT8', -3, Int8Array.from([1, 2]), Int8Array.from([3]));
    expect(Array.from(i8.merged!.data as Int8Array)).toEqual([1, 2, 3, -3]);
  });

  it('fails the batch with a message naming the input when the pad value does not fit the datatype', async () => {
    const { results } = await padPair('UINT8', 300, Uint8Array.from([1, 2]), Uint8Array.from([3]));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      if (r.status === 'rejected') expect(String(r.reason)).toMatch(/pad value 300 of input 'x' does not fit its datatype UINT8/);
    }
  });
});
