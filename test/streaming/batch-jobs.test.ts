import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { batchJobSpec, batchJobStatus, submitBatchJob, type BatchJobStatus } from '../../src/streaming/batch/jobs.js';
import { EXAMPLES, REPO_ROOT, SHARED_MODELS } from '../support/paths.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { jobStatusSource, startServerBatchWorker } from '../../src/streaming/batch/attach.js';
import { callContext } from '../../src/pipeline/context.js';

const CLI = join(REPO_ROOT, 'test', 'streaming', 'fixtures', 'inferd-cli.ts');
let redis: RedisServer;
let repository: string;
let dir: string;
let rows: number[][];
let header: string[];
let labels: number[];
const children: ChildProcess[] = [];

function runCli(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.once('exit', (code) => resolve({ code, out })));
  return { child, done };
}

beforeAll(async () => {
  [redis, repository, dir] = await Promise.all([
    startRedis(),
    makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } }),
    mkdtemp(join(tmpdir(), 'inferd-jobs-')),
  ]);
  const text = await readFile(join(SHARED_MODELS, 'breast_cancer', 'data', 'test.csv'), 'utf8');
  const lines = text.trim().split('\n');
  header = lines[0]!.split(',');
  rows = lines.slice(1).map((l) => l.split(',').slice(0, 30).map(Number));
  const session = await ort.InferenceSession.create(join(SHARED_MODELS, 'breast_cancer', '1', 'model.onnx'));
  const result = await session.run({ features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 30]) });
  labels = Array.from(result['label']!.data as BigInt64Array, Number);
  await session.release();
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.stop();
});

describe('distributed batch jobs', () => {
  it('two workers on one Redis score every row exactly once; re-submission adds nothing; status reports progress', async () => {
    const n = 30_000;
    const bad = new Set([10, 25_000]);
    const input = join(dir, 'big.csv');
    const out = [`id,${header.join(',')}`];
    for (let i = 0; i < n; i++) {
      const values = rows[i % rows.length]!.map(String);
      if (bad.has(i)) values[0] = '';
      out.push(`r${i},${values.join(',')},0`);
    }
    await writeFile(input, `${out.join('\n')}\n`);
    const output = join(dir, 'big.scored.csv');

    const submit = runCli(['batch', 'submit', '--redis', redis.url, '--model', 'breast_cancer', '--input', input, '--output', output, '--exclude-columns', 'label', '--chunk-rows', '2000']);
    const submitted = await submit.done;
    expect(submitted.code, submitted.out).toBe(0);
    const first = JSON.parse(submitted.out.trim().split('\n').pop()!) as { jobId: string; chunks: number; rows: number; created: boolean };
    expect(first).toMatchObject({ chunks: 15, rows: n, created: true });
    // The same job again: same id, nothing added.
    const again = await submitBatchJob(redis.url, batchJobSpec({ model: 'breast_cancer', input, output, excludeColumns: ['label'], chunkRows: 2000 }));
    expect(again).toEqual({ ...first, created: false });

    const pending = (await batchJobStatus(redis.url, first.jobId))!;
    expect(pending).toMatchObject({ id: first.jobId, state: 'waiting-children', chunks: { total: 15, done: 0 }, rows: { total: n, done: 0 }, progress: 0 });

    const workers = ['w1', 'w2'].map((name) => runCli(['worker', '--redis', redis.url, '--model-repository', repository, '--name', name, '--log-level', 'warn']));
    let status: BatchJobStatus | undefined;
    const deadline = Date.now() + 90_000;
    for (;;) {
      status = await batchJobStatus(redis.url, first.jobId);
      if (status?.state === 'completed' || status?.state === 'failed' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const w of workers) w.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => w.done));
    expect(status!.state, JSON.stringify(status) + exits.map((e) => e.out).join('\n')).toBe('completed');
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    expect(status!.result).toMatchObject({ rows: n, scored: n - 2, failed: 2, chunks: 15 });
    expect(status!.rows).toEqual({ total: n, scored: n - 2, failed: 2, done: n });
    expect(status!.progress).toBe(1);
    // Both workers took chunks, and the chunks add up to the job (each chunk counted once).
    expect(Object.keys(status!.workers).sort()).toEqual(['w1', 'w2']);
    expect(Object.values(status!.workers).reduce((a, b) => a + b, 0)).toBe(15);

    const lines = (await readFile(output, 'utf8')).trim().split('\n');
    expect(lines[0]).toBe('id,probabilities_0,probabilities_1,label');
    const ids = lines.slice(1).map((l) => l.split(',')[0]);
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => !bad.has(i)).map((i) => `r${i}`));
    for (const l of lines.slice(1)) {
      const f = l.split(',');
      expect(Number(f[3])).toBe(labels[Number(f[0]!.slice(1)) % rows.length]);
    }
    const failures = (await readFile(`${output}.failed.jsonl`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { row: number });
    expect(failures.map((f) => f.row)).toEqual([11, 25_001]);
    // Parts are removed once assembled.
    expect((await readdir(dirname(output))).filter((f) => f.includes('.parts-'))).toEqual([]);

    const cliStatus = await runCli(['batch', 'status', first.jobId, '--redis', redis.url]).done;
    expect(cliStatus.code, cliStatus.out).toBe(0);
    expect(JSON.parse(cliStatus.out)).toMatchObject({ id: first.jobId, state: 'completed' });
  }, 150_000);
});

describe('batch jobs inside a server', () => {
  it('a server with batch.workers scores chunks through its own data plane and reports job status', async () => {
    const { server } = await startInProcess(repository, { batch: { redis: redis.url, workers: 2 } });
    const worker = startServerBatchWorker(server.config, server.plane)!;
    const status = jobStatusSource(server.config)!;
    try {
      const input = join(dir, 'small.jsonl');
      await writeFile(input, `${rows.slice(0, 50).map((r, i) => JSON.stringify({ id: `j${i}`, features: r })).join('\n')}\n`);
      const output = join(dir, 'small.scored.jsonl');
      const submitted = await submitBatchJob(redis.url, batchJobSpec({ model: 'breast_cancer', input, output, chunkRows: 20 }), { jobId: 'server-job-1' });
      expect(submitted).toMatchObject({ jobId: 'server-job-1', chunks: 3, rows: 50, created: true });
      let s: BatchJobStatus | undefined;
      const deadline = Date.now() + 30_000;
      do {
        await new Promise((r) => setTimeout(r, 100));
        s = await status.status('server-job-1');
      } while (s?.state !== 'completed' && Date.now() < deadline);
      expect(s).toMatchObject({ state: 'completed', rows: { total: 50, scored: 50, failed: 0, done: 50 }, result: { rows: 50, scored: 50 } });
      const lines = (await readFile(output, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { id: string; outputs: { label: number } });
      expect(lines.map((l) => l.id)).toEqual(Array.from({ length: 50 }, (_, i) => `j${i}`));
      lines.forEach((l, i) => expect(l.outputs.label).toBe(labels[i]));
      expect(await status.status('no-such-job')).toBeUndefined();
      // The server's metrics saw the batch door's requests.
      const stats = await server.plane.modelStatistics(callContext(undefined), 'breast_cancer');
      expect(stats[0]!.inference_count).toBeGreaterThanOrEqual(50);
    } finally {
      await worker.close();
      await status.close();
      await server.shutdown(5000);
    }
  }, 60_000);
});
