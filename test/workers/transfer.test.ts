// Tensors cross to a model's worker thread and back by transfer, not by copy: a buffer the
// tensor owns whole is detached on the sending side (so it cannot be read or reused by mistake
// afterwards), a view into a larger buffer is copied first (the larger buffer stays whole and
// usable), and the outputs arrive owning their buffers.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lendToWorker } from '../../src/core/tensor.js';
import type { Tensor } from '../../src/core/types.js';
import type { RuntimeSpec } from '../../src/runtimes/types.js';
import { ModelWorkerPool } from '../../src/workers/pool.js';

let pool: ModelWorkerPool;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inferd-transfer-'));
  const path = join(dir, 'model.mjs');
  // Doubles its input: the answer shows the worker read the values that were sent.
  writeFileSync(path, `export function predict({ x }) { const y = new Float32Array(x.data.length); for (let i = 0; i < y.length; i++) y[i] = 2 * x.data[i]; return [{ name: 'y', datatype: 'FP32', shape: x.shape, data: y }]; }`);
  const spec: RuntimeSpec = {
    kind: 'js',
    model: 'double',
    version: '1',
    path,
    onnx: { intraOpThreads: 1, interOpThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'], enableCpuMemArena: true, enableMemPattern: true, allowSpinning: true },
    parameters: {},
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, -1] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, -1] }],
    warmup: [],
    logLevel: 'warn',
  };
  pool = new ModelWorkerPool({ instances: 1, spec });
  await pool.ready();
});

afterAll(async () => {
  await pool?.close();
});

const values = (n: number) => Float32Array.from({ length: n }, (_, i) => i / 7);

describe('tensors to and from a model worker', () => {
  it('transfers a buffer the input owns: detached here afterwards, doubled there', async () => {
    const data = values(150_528);
    const input: Tensor = { name: 'x', datatype: 'FP32', shape: [1, data.length], data };
    const { outputs } = await pool.infer([input], ['y']);
    // Detached: reading or reusing the sent array finds nothing, rather than stale values.
    expect(data.buffer.byteLength).toBe(0);
    expect(data.length).toBe(0);
    const y = outputs[0]!.data as Float32Array;
    expect(y.length).toBe(150_528);
    expect(y[7]).toBeCloseTo(2, 6);
    // The output owns its buffer: it can be transferred on again (to the response encoder, a cache).
    expect(y.byteOffset).toBe(0);
    expect(y.byteLength).toBe(y.buffer.byteLength);
  });

  it('copies a view into a larger buffer, which stays whole', async () => {
    const body = new ArrayBuffer(4 * 1000 + 8);
    const whole = new Float32Array(body);
    whole.set(values(1002));
    const view = new Float32Array(body, 8, 1000);
    const input: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 1000], data: view };
    const { outputs } = await pool.infer([input], ['y']);
    expect(body.byteLength).toBe(4008);
    expect(whole[2]).toBeCloseTo(2 / 7, 6);
    expect(view.length).toBe(1000);
    expect((outputs[0]!.data as Float32Array)[0]).toBeCloseTo((2 * 2) / 7, 6);
  });

  it('transfers memory lent to a tensor whole, header bytes and all, instead of copying the view', async () => {
    const body = new ArrayBuffer(4 * 1000 + 8);
    const view = new Float32Array(body, 8, 1000);
    view.set(values(1000));
    lendToWorker(body);
    const input: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 1000], data: view };
    const { outputs } = await pool.infer([input], ['y']);
    expect(body.byteLength).toBe(0);
    expect(input.data).toBe(view);
    expect((outputs[0]!.data as Float32Array)[7]).toBeCloseTo(2, 6);
  });

  it('sends every run of a group in one transferred buffer and answers each, outputs in one buffer too', async () => {
    const a = values(10);
    const b = values(20);
    const runs = [
      { inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 10], data: a }], outputs: ['y'], requestIds: ['a'] },
      { inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 20], data: b }], outputs: ['y'], requestIds: ['b'] },
    ];
    const results = await pool.inferEach(runs);
    // The callers' arrays were copied into one buffer, which went to the worker.
    expect(a.length).toBe(10);
    expect(runs[0]!.inputs[0]!.data === a).toBe(false);
    expect((runs[0]!.inputs[0]!.data as Float32Array).buffer === (runs[1]!.inputs[0]!.data as Float32Array).buffer).toBe(true);
    expect((runs[0]!.inputs[0]!.data as Float32Array).length).toBe(0);
    const outputs = results.map((r) => (r instanceof Error ? r : (r.outputs[0]!.data as Float32Array)));
    expect(outputs.map((o) => (o instanceof Error ? o.message : o.length))).toEqual([10, 20]);
    const [ya, yb] = outputs as Float32Array[];
    expect(Array.from(ya!)).toEqual(Array.from(a, (x) => x * 2));
    expect(Array.from(yb!)).toEqual(Array.from(b, (x) => x * 2));
    expect(ya!.buffer === yb!.buffer).toBe(true);
  });

  it('moves a large buffer a tensor of a group owns whole instead of copying it', async () => {
    const small = values(10);
    const large = values(32 * 1024); // 128 KiB
    const runs = [
      { inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 10], data: small }], outputs: ['y'], requestIds: ['s'] },
      { inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, large.length], data: large }], outputs: ['y'], requestIds: ['l'] },
    ];
    const results = await pool.inferEach(runs);
    expect(runs[1]!.inputs[0]!.data === large).toBe(true);
    expect(large.length).toBe(0); // transferred, so detached here
    expect(small.length).toBe(10); // copied into the group's buffer
    const y = results.map((r) => (r instanceof Error ? r.message : (r.outputs[0]!.data as Float32Array).length));
    expect(y).toEqual([10, 32 * 1024]);
  });
});
