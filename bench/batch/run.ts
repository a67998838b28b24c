/**
 * Batch scoring of a large CSV on one machine: `inferd batch score` (in-process data plane,
 * dynamic batcher, worker thread) against the same job written by hand with raw
 * onnxruntime-node at the same batch size (read, parse, session.run, write the same CSV: the
 * ceiling). Each side runs in its own child
 * process so peak RSS is its own.
 *
 *   node --import tsx bench/batch/run.ts [--rows 1000000] [--batch 64] [--instances 1] [--concurrency 8] [--keep]
 *
 * Writes a breast_cancer-shaped CSV (the 143 test rows cycled, an id column) of --rows rows to a
 * temporary directory first.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODELS = resolve(ROOT, '..', 'shared', 'models');

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '64' },
    keep: { type: 'boolean', default: false },
    side: { type: 'string' },
    input: { type: 'string' },
    output: { type: 'string' },
    repository: { type: 'string' },
    instances: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '8' },
  },
});

interface SideResult {
  side: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMb: number;
}

async function runInferd(input: string, output: string, repository: string, batch: number): Promise<SideResult> {
  const { repositoryScorer } = await import('../../src/streaming/batch/scorer.js');
  const { scoreFile } = await import('../../src/streaming/batch/score.js');
  const scorer = await repositoryScorer(repository, 'breast_cancer', undefined);
  const summary = await scoreFile({ scorer, input, output, excludeColumns: ['label'], batchSize: batch, chunkRows: 20_000, concurrency: Number(values.concurrency), restart: true });
  await scorer.close();
  return { side: 'inferd batch score', rows: summary.rows, seconds: summary.seconds, rowsPerSecond: summary.rows / summary.seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

/** The same job written by hand: read, parse, batch, session.run, write the same CSV. */
async function runRaw(input: string, output: string, batch: number): Promise<SideResult> {
  const ort = await import('onnxruntime-node');
  const { readLines } = await import('../../src/streaming/batch/lines.js');
  const session = await ort.InferenceSession.create(join(MODELS, 'breast_cancer', '1', 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const started = performance.now();
  let rows = 0;
  let first = true;
  const buffer = new Float32Array(batch * 30);
  let inBatch = 0;
  const ids: string[] = [];
  const out = createWriteStream(output);
  out.write('id,probabilities_0,probabilities_1,label\n');
  const flush = async () => {
    if (inBatch === 0) return;
    const result = await session.run({ features: new ort.Tensor('float32', buffer.slice(0, inBatch * 30), [inBatch, 30]) });
    const p = result['probabilities']!.data as Float32Array;
    const label = result['label']!.data as BigInt64Array;
    let text = '';
    for (let r = 0; r < inBatch; r++) text += `${ids[r]},${p[r * 2]},${p[r * 2 + 1]},${label[r]}\n`;
    if (!out.write(text)) await new Promise<void>((r) => out.once('drain', () => r()));
    inBatch = 0;
    ids.length = 0;
  };
  for await (const line of readLines(input)) {
    if (first) {
      first = false;
      continue;
    }
    const fields = line.text.split(',');
    ids.push(fields[0]!);
    for (let k = 0; k < 30; k++) buffer[inBatch * 30 + k] = Number(fields[k + 1]);
    inBatch++;
    rows++;
    if (inBatch === batch) await flush();
  }
  await flush();
  await new Promise<void>((r) => out.end(r));
  const seconds = (performance.now() - started) / 1000;
  return { side: 'raw onnxruntime-node', rows, seconds, rowsPerSecond: rows / seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

async function child(side: string, args: string[]): Promise<SideResult> {
  const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--side', side, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`${side} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as SideResult;
}

async function main(): Promise<void> {
  const batch = Number(values.batch);
  if (values.side === 'inferd') {
    console.log(JSON.stringify(await runInferd(values.input!, values.output!, values.repository!, batch)));
    return;
  }
  if (values.side === 'raw') {
    console.log(JSON.stringify(await runRaw(values.input!, values.output!, batch)));
    return;
  }
  const rows = Number(values.rows);
  const dir = await mkdtemp(join(tmpdir(), 'inferd-bench-batch-'));
  const repository = join(dir, 'models');
  await cp(join(ROOT, 'examples', 'models', 'breast_cancer'), join(repository, 'breast_cancer'), { recursive: true });
  // Worker threads running the model (the example has one; raw onnxruntime uses one thread).
  const configFile = join(repository, 'breast_cancer', 'config.yaml');
  await writeFile(configFile, (await readFile(configFile, 'utf8')).replace(/^instances: \d+$/m, `instances: ${values.instances}`));
  const test = (await readFile(join(MODELS, 'breast_cancer', 'data', 'test.csv'), 'utf8')).trim().split('\n');
  const input = join(dir, 'data.csv');
  const w = createWriteStream(input);
  w.write(`id,${test[0]}\n`);
  for (let i = 0; i < rows; i++) {
    if (!w.write(`r${i},${test[1 + (i % (test.length - 1))]}\n`)) await new Promise<void>((r) => w.once('drain', () => r()));
  }
  await new Promise<void>((r) => w.end(r));
  const size = (await stat(input)).size;
  process.stderr.write(`input: ${rows} rows, ${(size / 1e6).toFixed(0)} MB\n`);
  const raw = await child('raw', ['--input', input, '--output', join(dir, 'raw.csv'), '--batch', String(batch)]);
  const inferd = await child('inferd', ['--input', input, '--output', join(dir, 'scored.csv'), '--repository', repository, '--batch', String(batch), '--concurrency', String(values.concurrency)]);
  const report = {
    rows,
    inputMb: Math.round(size / 1e6),
    batch,
    instances: Number(values.instances),
    concurrency: Number(values.concurrency),
    raw,
    inferd,
    inferdVsRaw: inferd.rowsPerSecond / raw.rowsPerSecond,
  };
  console.log(JSON.stringify(report, null, 2));
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}

await main();
