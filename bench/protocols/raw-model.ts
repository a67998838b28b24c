/**
 * The model alone: onnxruntime-node `session.run()` in a loop in this process, with the session
 * options inferd uses for the model (intra-op threads as configured, one inter-op thread, all
 * graph optimisations, CPU provider, memory arena and pattern on). No server, no encoding.
 * Prints one JSON line: per batch size, runs, milliseconds per run and rows per second.
 *
 *   npx tsx bench/protocols/raw-model.ts --model FILE --input NAME --shape 3,224,224 \
 *     --threads 2 --batches 1,2,3,4 --seconds 2
 *
 * --no-spin turns off onnxruntime's spin-waiting of intra-op threads, as inferd runs models unless
 * their configuration says `onnx.allow_spinning: true`; compare the server with the model alone
 * at the same setting. --fresh-input copies the input into new memory before every run, as a
 * server gets each request's tensor in memory the model has not read before.
 *
 * With --serve it keeps the session and answers requests instead, one JSON line in
 * (`{"batches": [1, 2], "seconds": 1}`) and one out, so a benchmark can measure the model
 * right before and after each server measurement without reloading it.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { syntheticImage } from './inputs.js';

export interface RawPoint {
  batch: number;
  runs: number;
  msPerRun: number;
  rowsPerSecond: number;
  /** CPU time of this process (every thread, onnxruntime's included) per run, ms. */
  cpuMsPerRun: number;
}

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    input: { type: 'string', default: 'input' },
    shape: { type: 'string', default: '3,224,224' },
    threads: { type: 'string', default: '2' },
    batches: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '2' },
    serve: { type: 'boolean', default: false },
    'no-spin': { type: 'boolean', default: false },
    'fresh-input': { type: 'boolean', default: false },
  },
});
if (values.model === undefined) throw new Error('--model FILE is required');
const rowShape = values.shape!.split(',').map(Number);
const rowSize = rowShape.reduce((a, b) => a * b, 1);
const row = syntheticImage(rowSize);

const session = await ort.InferenceSession.create(values.model, {
  intraOpNumThreads: Number(values.threads),
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
  enableCpuMemArena: true,
  enableMemPattern: true,
  ...(values['no-spin'] ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
});

const feedsByBatch = new Map<number, Record<string, ort.Tensor>>();
async function feedsFor(batch: number): Promise<Record<string, ort.Tensor>> {
  let feeds = feedsByBatch.get(batch);
  if (feeds === undefined) {
    const data = new Float32Array(batch * rowSize);
    for (let b = 0; b < batch; b++) data.set(row, b * rowSize);
    feeds = { [values.input!]: new ort.Tensor('float32', data, [batch, ...rowShape]) };
    feedsByBatch.set(batch, feeds);
    for (let i = 0; i < 3; i++) await session.run(feeds);
  }
  return feeds;
}

async function measure(batches: number[], seconds: number): Promise<RawPoint[]> {
  const points: RawPoint[] = [];
  for (const batch of batches) {
    const feeds = await feedsFor(batch);
    await session.run(feeds);
    let runs = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      if (values['fresh-input']) {
        const tensor = feeds[values.input!]!;
        await session.run({ [values.input!]: new ort.Tensor('float32', (tensor.data as Float32Array).slice(), tensor.dims) });
      } else {
        await session.run(feeds);
      }
      runs++;
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    points.push({ batch, runs, msPerRun: ms / runs, rowsPerSecond: (runs * batch * 1000) / ms, cpuMsPerRun: (cpu.user + cpu.system) / 1000 / runs });
  }
  return points;
}

if (values.serve) {
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const request = JSON.parse(line) as { batches: number[]; seconds: number };
    process.stdout.write(`${JSON.stringify(await measure(request.batches, request.seconds))}\n`);
  }
} else {
  const points = await measure(values.batches!.split(',').map(Number), Number(values.seconds));
  process.stdout.write(`${JSON.stringify(points)}\n`);
}
await session.release();
