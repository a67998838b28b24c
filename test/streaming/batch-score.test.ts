import { mkdtemp, readFile, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { repositoryScorer, urlScorer, type Scorer } from '../../src/streaming/batch/scorer.js';
import { checkpointPath, scoreFile } from '../../src/streaming/batch/score.js';
import { EXAMPLES, SHARED_MODELS } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';

const FEATURES = 30;
let scorer: Scorer;
let repository: string;
let dir: string;
let rows: number[][];
let header: string[];
let labels: number[];
let probabilities: number[][];

/** Wraps a scorer to count the rows it is asked to score. */
function counting(inner: Scorer): Scorer & { rows: number } {
  const wrapped = {
    rows: 0,
    model: inner.model,
    version: inner.version,
    metadata: () => inner.metadata(),
    infer: (request: Parameters<Scorer['infer']>[0], id: string) => {
      wrapped.rows += request.inputs[0]!.shape[0]!;
      return inner.infer(request, id);
    },
    close: () => inner.close(),
  };
  return wrapped;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inferd-batch-'));
  repository = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
  scorer = await repositoryScorer(repository, 'breast_cancer', undefined);
  const text = await readFile(join(SHARED_MODELS, 'breast_cancer', 'data', 'test.csv'), 'utf8');
  const lines = text.trim().split('\n');
  header = lines[0]!.split(',');
  rows = lines.slice(1).map((l) => l.split(',').slice(0, FEATURES).map(Number));
  const session = await ort.InferenceSession.create(join(SHARED_MODELS, 'breast_cancer', '1', 'model.onnx'));
  const result = await session.run({ features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, FEATURES]) });
  labels = Array.from(result['label']!.data as BigInt64Array, Number);
  const p = result['probabilities']!.data as Float32Array;
  probabilities = rows.map((_, i) => [p[i * 2]!, p[i * 2 + 1]!]);
  await session.release();
}, 120_000);

afterAll(async () => {
  await scorer?.close();
});

/** A CSV of n rows (the test rows cycled) with an id column first and the label column last. */
async function writeInput(name: string, n: number, bad: Set<number> = new Set()): Promise<string> {
  const file = join(dir, name);
  const out = [`customer_id,${header.join(',')}`];
  for (let i = 0; i < n; i++) {
    const values = rows[i % rows.length]!.map(String);
    if (bad.has(i)) values[3] = 'oops';
    out.push(`cust-${i},${values.join(',')},0`);
  }
  await writeFile(file, `${out.join('\n')}\n`);
  return file;
}

describe('inferd batch score', () => {
  it('writes every row in input order with its id and the model outputs; failed rows go to the side file', async () => {
    const n = 2000;
    const bad = new Set([5, 777, 1999]);
    const input = await writeInput('ordered.csv', n, bad);
    const output = join(dir, 'ordered.scored.csv');
    const summary = await scoreFile({ scorer, input, output, idColumn: 'customer_id', excludeColumns: ['label'], chunkRows: 300, batchSize: 16, concurrency: 6 });
    expect(summary).toMatchObject({ complete: true, rows: n, scored: n - bad.size, failed: bad.size });
    const lines = (await readFile(output, 'utf8')).trim().split('\n');
    expect(lines[0]).toBe('customer_id,probabilities_0,probabilities_1,label');
    const data = lines.slice(1);
    expect(data).toHaveLength(n - bad.size);
    const expectedIds = Array.from({ length: n }, (_, i) => i).filter((i) => !bad.has(i));
    data.forEach((line, k) => {
      const [id, p0, p1, label] = line.split(',');
      const i = expectedIds[k]!;
      expect(id).toBe(`cust-${i}`);
      expect(Number(label)).toBe(labels[i % rows.length]);
      expect(Math.abs(Number(p0) - probabilities[i % rows.length]![0]!)).toBeLessThan(1e-6);
      expect(Math.abs(Number(p1) - probabilities[i % rows.length]![1]!)).toBeLessThan(1e-6);
    });
    const failures = (await readFile(summary.failedFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { row: number; error: string; code: string });
    expect(failures.map((f) => f.row)).toEqual([6, 778, 2000]);
    expect(failures[0]!.error).toMatch(/mean_area.*not a number: 'oops'/);
    expect(failures[0]!.code).toBe('INVALID_ARGUMENT');
    await expect(stat(checkpointPath(output))).rejects.toThrow();
  });

  it('resumes after an interruption without scoring finished chunks again', async () => {
    const n = 5000;
    const input = await writeInput('resume.csv', n, new Set([42, 4321]));
    const output = join(dir, 'resume.scored.jsonl');
    const first = counting(scorer);
    const stop = new AbortController();
    let chunks = 0;
    const partial = await scoreFile({
      scorer: first,
      input,
      output,
      idColumn: 'customer_id',
      excludeColumns: ['label'],
      chunkRows: 1000,
      signal: stop.signal,
      onProgress: () => {
        if (++chunks === 2) stop.abort();
      },
    });
    // Stopping finishes the chunks in flight (the third was already being scored) and checkpoints them.
    expect(partial).toMatchObject({ complete: false, rows: 3000 });
    expect(first.rows).toBe(2999);
    // What a crash mid-chunk leaves behind: output past the checkpoint, which the resume cuts off.
    await writeFile(output, '{"customer_id":"half-writ', { flag: 'a' });
    const second = counting(scorer);
    const resumed = await scoreFile({ scorer: second, input, output, idColumn: 'customer_id', excludeColumns: ['label'], chunkRows: 1000 });
    expect(resumed).toMatchObject({ complete: true, rows: n, scored: n - 2, failed: 2, resumedAt: 3000 });
    expect(second.rows).toBe(2000 - 1);
    const lines = (await readFile(output, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { customer_id: string; outputs: { label: number; probabilities: number[] } });
    expect(lines).toHaveLength(n - 2);
    const ids = lines.map((l) => Number(l.customer_id.slice(5)));
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => i !== 42 && i !== 4321));
    for (const l of lines) expect(l.outputs.label).toBe(labels[Number(l.customer_id.slice(5)) % rows.length]);
    const failures = (await readFile(resumed.failedFile, 'utf8')).trim().split('\n');
    expect(failures.map((f) => (JSON.parse(f) as { row: number }).row)).toEqual([43, 4322]);
  });

  it('refuses a CSV whose feature columns do not fit the model, naming the problem', async () => {
    const input = await writeInput('extra.csv', 10);
    await expect(scoreFile({ scorer, input, output: join(dir, 'extra.out.csv'), idColumn: 'customer_id' })).rejects.toThrow(/takes 30 values per row but the CSV has 31 feature columns/);
  });
});

describe('inferd batch score --url', () => {
  it("scores through a running server's REST API with the same results", async () => {
    const { server, url } = await startInProcess(repository);
    try {
      const input = await writeInput('remote.csv', 700, new Set([3]));
      const local = await scoreFile({ scorer, input, output: join(dir, 'local.csv'), idColumn: 'customer_id', excludeColumns: ['label'], chunkRows: 256 });
      const remote = await scoreFile({ scorer: urlScorer(url, 'breast_cancer', undefined), input, output: join(dir, 'remote.out.csv'), idColumn: 'customer_id', excludeColumns: ['label'], chunkRows: 256 });
      expect(remote).toMatchObject({ complete: true, rows: 700, scored: 699, failed: 1 });
      const a = (await readFile(local.output, 'utf8')).trim().split('\n');
      const b = (await readFile(remote.output, 'utf8')).trim().split('\n');
      expect(b.length).toBe(a.length);
      b.forEach((line, i) => {
        const [id, p0, , label] = line.split(',');
        const [lid, lp0, , llabel] = a[i]!.split(',');
        expect(id).toBe(lid);
        expect(label).toBe(llabel);
        if (i > 0) expect(Math.abs(Number(p0) - Number(lp0))).toBeLessThan(1e-6);
      });
    } finally {
      await server.shutdown(5000);
    }
  });
});
