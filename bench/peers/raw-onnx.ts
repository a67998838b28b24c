/**
 * The compute limit: onnxruntime-node `session.run()` in a loop in one Node process, no server,
 * no serialization. For each thread count and batch size it reports rows per second and the
 * time of one run; the best rows per second is the ceiling any server of this model can reach
 * on this machine.
 *
 *   node --import tsx bench/peers/raw-onnx.ts --model ../shared/models/breast_cancer/1/model.onnx \
 *     --batches 1,4,16,64 --threads 1,2 --seconds 2 --json out.json
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { rng } from '../../src/loadgen/inputs.js';

interface Point {
  threads: number;
  batch: number;
  runs: number;
  rowsPerSec: number;
  runsPerSec: number;
  meanRunUs: number;
  p50RunUs: number;
}

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    batches: { type: 'string', default: '1,2,4,8,16,32,64' },
    threads: { type: 'string', default: '1,2' },
    seconds: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});
if (!values.model) throw new Error('--model <file.onnx> is required');
const batches = values.batches!.split(',').map(Number);
const threadCounts = values.threads!.split(',').map(Number);
const seconds = Number(values.seconds);

function makeFeeds(session: ort.InferenceSession, batch: number): Record<string, ort.Tensor> {
  const next = rng(1);
  const feeds: Record<string, ort.Tensor> = {};
  const meta = session.inputMetadata;
  for (const [i, name] of session.inputNames.entries()) {
    const m = meta[i];
    const dims = m && m.isTensor ? m.shape.map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 ? batch : 1)) : [batch];
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let k = 0; k < n; k++) data[k] = next();
    feeds[name] = new ort.Tensor('float32', data, dims);
  }
  return feeds;
}

const points: Point[] = [];
for (const threads of threadCounts) {
  const session = await ort.InferenceSession.create(values.model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  });
  for (const batch of batches) {
    const feeds = makeFeeds(session, batch);
    // Warm-up: first runs allocate and tune.
    for (let i = 0; i < 5; i++) await session.run(feeds);
    const times: number[] = [];
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      const t = performance.now();
      await session.run(feeds);
      times.push((performance.now() - t) * 1000);
    }
    const elapsed = (performance.now() - start) / 1000;
    times.sort((a, b) => a - b);
    const p: Point = {
      threads,
      batch,
      runs: times.length,
      rowsPerSec: (times.length * batch) / elapsed,
      runsPerSec: times.length / elapsed,
      meanRunUs: times.reduce((a, b) => a + b, 0) / times.length,
      p50RunUs: times[Math.floor(times.length / 2)]!,
    };
    points.push(p);
    process.stderr.write(
      `threads ${threads}  batch ${String(batch).padStart(3)}  ${p.rowsPerSec.toFixed(0).padStart(8)} rows/s  run p50 ${(p.p50RunUs / 1000).toFixed(3)} ms\n`,
    );
  }
  await session.release();
}

const best = points.reduce((a, b) => (b.rowsPerSec > a.rowsPerSec ? b : a));
const batch1 = points.filter((p) => p.batch === 1).reduce((a, b) => (b.p50RunUs < a.p50RunUs ? b : a), points[0]!);
const report = { model: values.model, seconds, points, best, bestBatch1: batch1 };
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(
  `best: ${best.rowsPerSec.toFixed(0)} rows/s at batch ${best.batch}, ${best.threads} thread(s); batch 1: ${batch1.p50RunUs.toFixed(0)} us per run\n`,
);
