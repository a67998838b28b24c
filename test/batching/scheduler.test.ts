// The dynamic batcher's behaviour, deterministically: ordering, splitting, padding, priorities,
// timeouts, queue limits, cancellation. The executor here is a plain function that records each
// batch and computes each row's answer from its own input, so any mix-up shows.
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/batching/scheduler.js';
import type { SchedulerOptions } from '../../src/batching/types.js';
import type { Tensor } from '../../src/core/types.js';

const base: SchedulerOptions = {
  model: 'm',
  version: '1',
  maxBatchSize: 8,
  dynamicBatching: { maxQueueDelayMicroseconds: 50_000, preferredBatchSizes: [] },
  instances: 1,
  maxQueueSize: 100,
  defaultQueueTimeoutMs: 0,
  priorityLevels: 2,
  defaultPriority: 2,
  ragged: {},
};

function rows(values: number[][]): Tensor {
  return { name: 'x', datatype: 'FP32', shape: [values.length, values[0]!.length], data: Float32Array.from(values.flat()) };
}

/** Doubles every element; `sum` output is the row sum. Records the batches it saw. */
function doubler(batches: number[][], gate?: Promise<void>) {
  return async (inputs: Tensor[]) => {
    const x = inputs[0]!;
    batches.push([x.shape[0]!, ...x.shape.slice(1)]);
    if (gate) await gate;
    const data = Float32Array.from(x.data as Float32Array, (v) => v * 2);
    const width = x.shape[1]!;
    const sums = new Float32Array(x.shape[0]!).map((_, r) => (x.data as Float32Array).subarray(r * width, (r + 1) * width).reduce((a, b) => a + b, 0));
    return {
      outputs: [
        { name: 'y', datatype: 'FP32' as const, shape: [...x.shape], data },
        { name: 'sum', datatype: 'FP32' as const, shape: [x.shape[0]!], data: sums },
      ],
      timings: { inputNs: 1, inferNs: 1, outputNs: 1 },
    };
  };
}

describe('dynamic batcher', () => {
  it('merges requests of mixed batch sizes and splits results back exactly', async () => {
    const batches: number[][] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler({ ...base, dynamicBatching: { maxQueueDelayMicroseconds: 0, preferredBatchSizes: [] } }, doubler(batches, gate));
    // The first request occupies the only instance; the next four queue and form one batch.
    const first = s.submit([rows([[1, 1]])], ['y', 'sum']);
    const reqs = [[[1, 2]], [[3, 4], [5, 6]], [[7, 8]], [[9, 10], [11, 12], [13, 14]]];
    const pending = reqs.map((r) => s.submit([rows(r)], ['y', 'sum']));
    open();
    await first;
    const results = await Promise.all(pending);
    expect(batches).toEqual([[1, 2], [7, 2]]);
    results.forEach((res, i) => {
      const y = res.outputs.find((t) => t.name === 'y')!;
      expect(y.shape).toEqual([reqs[i]!.length, 2]);
      expect(Array.from(y.data as Float32Array)).toEqual(reqs[i]!.flat().map((v) => v * 2));
      const sum = res.outputs.find((t) => t.name === 'sum')!;
      expect(Array.from(sum.data as Float32Array)).toEqual(reqs[i]!.map((r) => r[0]! + r[1]!));
      expect(res.batchRows).toBe(7);
    });
  });

  it('waits up to the queue delay for a fuller batch, and sends a full batch at once', async () => {
    const batches: number[][] = [];
    const s = new Scheduler({ ...base, maxBatchSize: 4, dynamicBatching: { maxQueueDelayMicroseconds: 30_000, preferredBatchSizes: [] } }, doubler(batches));
    const t0 = performance.now();
    const lone = await s.submit([rows([[1, 1]])], ['y']);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(lone.batchRows).toBe(1);
    const full = await Promise.all([1, 2, 3, 4].map((v) => s.submit([rows([[v, v]])], ['y'])));
    expect(full.every((r) => r.batchRows === 4)).toBe(true);
    expect(batches).toEqual([[1, 2], [4, 2]]);
  });

  it('sends a preferred batch size without waiting for the delay', async () => {
    const batches: number[][] = [];
    const s = new Scheduler({ ...base, dynamicBatching: { maxQueueDelayMicroseconds: 10_000_000, preferredBatchSizes: [2] } }, doubler(batches));
    const results = await Promise.all([1, 2].map((v) => s.submit([rows([[v, v]])], ['y'])));
    expect(results.map((r) => r.batchRows)).toEqual([2, 2]);
  });

  it('runs higher priority requests first', async () => {
    const order: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler({ ...base, dynamicBatching: undefined }, async (inputs) => {
      order.push((inputs[0]!.data as Float32Array)[0]!);
      if (order.length === 1) await gate;
      return { outputs: inputs, timings: { inputNs: 0, inferNs: 0, outputNs: 0 } };
    });
    const all = [s.submit([rows([[0]])], ['x'])];
    all.push(s.submit([rows([[1]])], ['x'], { priority: 2 }));
    all.push(s.submit([rows([[2]])], ['x'], { priority: 2 }));
    all.push(s.submit([rows([[3]])], ['x'], { priority: 1 }));
    open();
    await Promise.all(all);
    expect(order).toEqual([0, 3, 1, 2]);
  });

  it('rejects at once when the queue is full, with a retry hint', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler({ ...base, dynamicBatching: undefined, maxQueueSize: 2 }, async (inputs) => {
      await gate;
      return { outputs: inputs, timings: { inputNs: 0, inferNs: 0, outputNs: 0 } };
    });
    const running = s.submit([rows([[0]])], ['x']);
    const queued = [s.submit([rows([[1]])], ['x']), s.submit([rows([[2]])], ['x'])];
    const err = await s.submit([rows([[3]])], ['x']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RESOURCE_EXHAUSTED', retryAfterSeconds: 1 });
    expect((err as Error).message).toMatch(/queue of model 'm' is full \(2 requests waiting\)/);
    open();
    await Promise.all([running, ...queued]);
  });

  it('rejects a request that times out in the queue and never runs it', async () => {
    const ran: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler({ ...base, dynamicBatching: undefined }, async (inputs) => {
      ran.push((inputs[0]!.data as Float32Array)[0]!);
      if (ran.length === 1) await gate;
      return { outputs: inputs, timings: { inputNs: 0, inferNs: 0, outputNs: 0 } };
    });
    const first = s.submit([rows([[0]])], ['x']);
    const late = s.submit([rows([[1]])], ['x'], { timeoutMs: 20 });
    const err = await late.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    open();
    await first;
    await s.whenIdle();
    expect(ran).toEqual([0]);
  });

  it('drops a request whose caller went away before it ran', async () => {
    const ran: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler({ ...base, dynamicBatching: undefined }, async (inputs) => {
      ran.push((inputs[0]!.data as Float32Array)[0]!);
      if (ran.length === 1) await gate;
      return { outputs: inputs, timings: { inputNs: 0, inferNs: 0, outputNs: 0 } };
    });
    const first = s.submit([rows([[0]])], ['x']);
    const controller = new AbortController();
    const gone = s.submit([rows([[1]])], ['x'], { signal: controller.signal });
    controller.abort();
    open();
    await first;
    expect(await gone.catch((e: unknown) => e)).toMatchObject({ code: 'CANCELLED' });
    expect(ran).toEqual([0]);
  });

  it('pads ragged inputs to the longest in the batch and slices rows back', async () => {
    const seen: Tensor[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler(
      { ...base, dynamicBatching: { maxQueueDelayMicroseconds: 0, preferredBatchSizes: [] }, ragged: { x: { kind: 'pad', value: -1 } } },
      async (inputs) => {
        seen.push(inputs[0]!);
        if (seen.length === 1) await gate;
        return { outputs: inputs, timings: { inputNs: 0, inferNs: 0, outputNs: 0 } };
      },
    );
    const first = s.submit([rows([[9]])], ['x']);
    const a = s.submit([rows([[1, 2, 3]])], ['x']);
    const b = s.submit([rows([[4]])], ['x']);
    open();
    await first;
    const [ra, rb] = await Promise.all([a, b]);
    expect(seen[1]!.shape).toEqual([2, 3]);
    expect(Array.from(seen[1]!.data as Float32Array)).toEqual([1, 2, 3, 4, -1, -1]);
    expect(Array.from(ra.outputs[0]!.data as Float32Array)).toEqual([1, 2, 3]);
    expect(Array.from(rb.outputs[0]!.data as Float32Array)).toEqual([4, -1, -1]);
  });

  it('does not batch inputs of different shapes without a ragged policy', async () => {
    const batches: number[][] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler({ ...base, dynamicBatching: { maxQueueDelayMicroseconds: 0, preferredBatchSizes: [] } }, doubler(batches, gate));
    const first = s.submit([rows([[1, 1]])], ['y']);
    const others = [s.submit([rows([[1, 2, 3]])], ['y']), s.submit([rows([[1, 2]])], ['y']), s.submit([rows([[4, 5, 6]])], ['y'])];
    open();
    await Promise.all([first, ...others]);
    expect(batches).toEqual([[1, 2], [2, 3], [1, 2]]);
  });

  it('rejects requests larger than max_batch_size and inconsistent batch dimensions', () => {
    const s = new Scheduler(base, doubler([]));
    expect(() => s.submit([rows(Array.from({ length: 9 }, () => [1]))], ['y'])).toThrow(/at most 8/);
    expect(() => s.submit([rows([[1]]), { name: 'z', datatype: 'FP32', shape: [2, 1], data: new Float32Array(2) }], ['y'])).toThrow(/same batch size/);
  });

  it('fails every request of a batch whose execution fails, and keeps serving', async () => {
    let fail = true;
    const s = new Scheduler({ ...base, dynamicBatching: undefined }, async (inputs) => {
      if (fail) throw new Error('boom');
      return { outputs: inputs, timings: { inputNs: 0, inferNs: 0, outputNs: 0 } };
    });
    await expect(s.submit([rows([[1]])], ['x'])).rejects.toThrow('boom');
    fail = false;
    await expect(s.submit([rows([[1]])], ['x'])).resolves.toMatchObject({ batchRows: 1 });
  });
});
