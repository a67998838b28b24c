// Without dynamic batching each request is its own run, but the requests waiting for an instance
// cross to its worker together. The scheduler part runs deterministically with a recording
// executor; the worker part runs against a live server with real worker threads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/batching/scheduler.js';
import type { EachExecutor, SchedulerOptions } from '../../src/batching/types.js';
import type { Tensor } from '../../src/core/types.js';
import type { InferdServer } from '../../src/server/index.js';
import { getJson, makeRepository, postJson, startInProcess } from '../support/server.js';

const options: SchedulerOptions = {
  model: 'm',
  version: '1',
  maxBatchSize: 0,
  instances: 1,
  maxQueueSize: 100,
  defaultQueueTimeoutMs: 0,
  priorityLevels: 1,
  defaultPriority: 1,
  ragged: {},
};

const scalar = (v: number): Tensor => ({ name: 'x', datatype: 'FP32', shape: [1], data: Float32Array.of(v) });
const timings = { inputNs: 1, inferNs: 1, outputNs: 1 };

/** Answers each run with its input plus 100; a run of 13 fails alone. Records each hand-off. */
function recorder(groups: number[][], gates: Array<Promise<void>> = []): EachExecutor {
  return async (runs) => {
    groups.push(runs.map((r) => (r.inputs[0]!.data as Float32Array)[0]!));
    await gates[groups.length - 1];
    return runs.map((r) => {
      const v = (r.inputs[0]!.data as Float32Array)[0]!;
      if (v === 13) return new Error('thirteen is refused');
      return { outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [1], data: Float32Array.of(v + 100) }], timings };
    });
  };
}

const never = () => Promise.reject(new Error('the batch executor must not be used without batching'));

describe('unbatched hand-off', () => {
  it('sends the requests that queued behind a busy instance in one hand-off, and answers each with its own outcome', async () => {
    const groups: number[][] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler(options, never, undefined, recorder(groups, [gate]));
    const first = s.submit([scalar(1)], ['y']);
    const queued = [2, 13, 4, 5].map((v) => s.submit([scalar(v)], ['y']).then((r) => (r.outputs[0]!.data as Float32Array)[0], (e: Error) => e.message));
    open();
    await first;
    expect(await Promise.all(queued)).toEqual([102, 'thirteen is refused', 104, 105]);
    expect(groups).toEqual([[1], [2, 13, 4, 5]]);
  });

  it('shares the waiting requests out among the instances', async () => {
    const groups: number[][] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler({ ...options, instances: 2 }, never, undefined, recorder(groups, [gate, gate]));
    // Both instances busy with one request each; six more wait. The instance that frees first
    // takes half of them, not all six, so the other has work when it frees.
    const busy = [s.submit([scalar(1)], ['y']), s.submit([scalar(2)], ['y'])];
    const waiting = [3, 4, 5, 6, 7, 8].map((v) => s.submit([scalar(v)], ['y']));
    open();
    await Promise.all([...busy, ...waiting]);
    expect(groups.slice(0, 2)).toEqual([[1], [2]]);
    expect(groups[2]).toHaveLength(3);
    expect(Math.max(...groups.slice(2).map((g) => g.length))).toBe(3);
    expect(groups.slice(2).flat().sort()).toEqual([3, 4, 5, 6, 7, 8]);
  });

  it('leaves cancelled and expired requests out of a hand-off', async () => {
    const groups: number[][] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const s = new Scheduler(options, never, undefined, recorder(groups, [gate]));
    const first = s.submit([scalar(1)], ['y']);
    const gone = { aborted: false };
    const cancelled = s.submit([scalar(2)], ['y'], { signal: gone }).then(() => 'ran', (e: Error) => e.message);
    const expired = s.submit([scalar(3)], ['y'], { timeoutMs: 1 }).then(() => 'ran', (e: Error) => e.message);
    const kept = s.submit([scalar(4)], ['y']);
    gone.aborted = true;
    await new Promise((r) => setTimeout(r, 20));
    open();
    await first;
    expect(await cancelled).toMatch(/went away/);
    expect(await expired).toMatch(/timed out/);
    await expect(kept).resolves.toMatchObject({ batchRows: 1 });
    expect(groups).toEqual([[1], [4]]);
  });
});

// A JavaScript model: x == 13 throws, x == 2 busies its thread for 300 ms, x == 1 never ends.
const MODEL = `export function predict({ x }) {
  const v = x.data[0];
  if (v === 13) throw new Error('the model refuses thirteen');
  if (v === 1) { for (;;) {} }
  if (v === 2) { const end = Date.now() + 300; while (Date.now() < end) {} }
  return { y: { datatype: 'INT32', shape: x.shape, data: x.data.map((e) => e + 100) } };
}`;
const CONFIG = `runtime: js
max_batch_size: 0
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
execution: { timeout_ms: 500, unhealthy_after_timeouts: 10 }
warmup: []
`;

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({ each: { config: CONFIG, files: { '1/model.mjs': MODEL } } });
  ({ server, url } = await startInProcess(repo));
}, 120_000);

afterAll(async () => {
  await server?.shutdown(5000);
});

const x = (v: number) => ({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [v] }] });

describe('unbatched hand-off to a worker thread', () => {
  it('answers every request of a group on its own: a failing run fails only its caller', async () => {
    const values = [5, 6, 13, 7, 8, 9, 10, 11];
    const answers = await Promise.all(values.map((v) => postJson(`${url}/v2/models/each/infer`, x(v))));
    expect(answers.map((a) => a.status)).toEqual(values.map((v) => (v === 13 ? 500 : 200)));
    answers.forEach((a, i) => {
      if (values[i] !== 13) expect(a.body.outputs[0].data).toEqual([values[i]! + 100]);
    });
    expect(answers[2]!.body.error).toMatch(/the model refuses thirteen/);
    // Each request ran on its own: one execution apiece (the failed run is not counted).
    const stats = await getJson(`${url}/v2/models/each/stats`);
    expect(stats.body.model_stats[0].execution_count).toBe(values.length - 1);
  });

  it('bounds each run of a group by the execution timeout, not the whole group', async () => {
    // The first run of 300 ms holds the instance while three more queue; they go as one group
    // of 900 ms, past the 500 ms timeout, and all succeed: each run stays under it.
    const started = Date.now();
    const first = postJson(`${url}/v2/models/each/infer`, x(2));
    await new Promise((r) => setTimeout(r, 100));
    const answers = await Promise.all([first, ...[2, 2, 2].map((v) => postJson(`${url}/v2/models/each/infer`, x(v)))]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
  });

  it('cuts off a run that passes the timeout inside a group (504), and serves on a new worker', async () => {
    const first = postJson(`${url}/v2/models/each/infer`, x(2));
    await new Promise((r) => setTimeout(r, 100));
    const [stuck] = await Promise.all([postJson(`${url}/v2/models/each/infer`, x(1)), postJson(`${url}/v2/models/each/infer`, x(6))]);
    expect((await first).status).toBe(200);
    expect(stuck!.status).toBe(504);
    expect(stuck!.body.error).toMatch(/execution timeout of 500 ms; its worker was terminated/);
    const after = await postJson(`${url}/v2/models/each/infer`, x(9));
    expect(after.status).toBe(200);
    expect(after.body.outputs[0].data).toEqual([109]);
  });
});
