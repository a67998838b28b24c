/**
 * Distributed batch jobs: the same job finished by one `inferd worker` process, then by two, on
 * one throwaway Redis. Reports wall time from submission to the assembled output.
 *
 *   node --import tsx bench/batch/workers.ts [--rows 300000] [--chunk-rows 10000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { batchJobSpec, batchJobStatus, submitBatchJob } from '../../src/streaming/batch/jobs.js';
import { startRedis } from '../../test/support/redis.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODELS = resolve(ROOT, '..', 'shared', 'models');
const CLI = join(ROOT, 'test', 'streaming', 'fixtures', 'inferd-cli.ts');

const { values } = parseArgs({ options: { rows: { type: 'string', default: '300000' }, 'chunk-rows': { type: 'string', default: '10000' } } });
const rows = Number(values.rows);

async function main(): Promise<void> {
  const redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'inferd-bench-workers-'));
  const repository = join(dir, 'models');
  await cp(join(ROOT, 'examples', 'models', 'breast_cancer'), join(repository, 'breast_cancer'), { recursive: true });
  const test = (await readFile(join(MODELS, 'breast_cancer', 'data', 'test.csv'), 'utf8')).trim().split('\n');
  const input = join(dir, 'data.csv');
  const w = createWriteStream(input);
  w.write(`id,${test[0]}\n`);
  for (let i = 0; i < rows; i++) if (!w.write(`r${i},${test[1 + (i % (test.length - 1))]}\n`)) await new Promise<void>((r) => w.once('drain', () => r()));
  await new Promise<void>((r) => w.end(() => r()));

  const results: Array<{ workers: number; seconds: number; rowsPerSecond: number; chunksPerWorker: Record<string, number> }> = [];
  for (const count of [1, 2]) {
    // Workers first, ready and waiting, so the timing is the job's and not the start-up's.
    const workers: ChildProcess[] = [];
    for (let k = 0; k < count; k++) {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'worker', '--redis', redis.url, '--model-repository', repository, '--name', `w${k + 1}`, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      while (!out.includes('batch worker started')) await new Promise((r) => setTimeout(r, 50));
      workers.push(child);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const spec = batchJobSpec({ model: 'breast_cancer', input, output: join(dir, `scored-${count}.csv`), excludeColumns: ['label'], chunkRows: Number(values['chunk-rows']) });
    const started = performance.now();
    const { jobId } = await submitBatchJob(redis.url, spec, { jobId: `bench-${count}-workers` });
    let status = await batchJobStatus(redis.url, jobId);
    while (status?.state !== 'completed' && status?.state !== 'failed') {
      await new Promise((r) => setTimeout(r, 50));
      status = await batchJobStatus(redis.url, jobId);
    }
    const seconds = (performance.now() - started) / 1000;
    results.push({ workers: count, seconds: Math.round(seconds * 100) / 100, rowsPerSecond: Math.round(rows / seconds), chunksPerWorker: status.workers });
    for (const child of workers) child.kill('SIGTERM');
    await Promise.all(workers.map((c) => new Promise((r) => c.once('exit', r))));
  }
  console.log(JSON.stringify({ rows, chunkRows: Number(values['chunk-rows']), results, speedup: results[0]!.seconds / results[1]!.seconds }, null, 2));
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
}

await main();
