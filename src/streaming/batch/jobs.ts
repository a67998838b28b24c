/**
 * Distributed batch jobs on Redis with BullMQ. A job is a BullMQ flow: one parent
 * ("assemble") with one child per chunk of the input ("chunk"). Chunk ids are the job id and the
 * chunk number, and the job id defaults to a digest of what is scored, so submitting the same
 * job again adds nothing. Any number of `inferd worker` processes (on any host that sees the
 * input and output paths) take chunks; each chunk's results go to its own part files, written
 * atomically, so a retried chunk replaces rather than appends. When the last chunk is done the
 * parent runs: it concatenates the parts, in chunk order, into the output and the side file.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { FlowProducer, Job, Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import { InvalidInputError } from '../../core/errors.js';
import { writeAtomically } from './files.js';
import { scoreChunk } from './chunk.js';
import { readLines, type Line } from './lines.js';
import type { Scorer } from './scorer.js';
import { formatOf, makeLayout, outputHeader, type TableFormat } from './table.js';

export const BATCH_QUEUE = 'inferd-batch';

/** What a job scores; paths are absolute (workers may run elsewhere, on a shared filesystem). */
export interface BatchJobSpec {
  model: string;
  version?: string;
  input: string;
  output: string;
  inputFormat: TableFormat;
  outputFormat: TableFormat;
  idColumn?: string;
  excludeColumns?: string[];
  chunkRows: number;
  batchSize?: number;
  concurrency?: number;
}

interface ChunkData {
  jobId: string;
  n: number;
  start: number;
  end: number;
  firstRow: number;
  rows: number;
  header?: string;
  partsDir: string;
  spec: BatchJobSpec;
}

interface AssembleData {
  jobId: string;
  chunks: number;
  rows: number;
  partsDir: string;
  spec: BatchJobSpec;
  submittedAt: number;
}

export interface ChunkOutcome {
  n: number;
  rows: number;
  scored: number;
  failed: number;
  worker: string;
  ms: number;
}

export interface JobOutcome {
  rows: number;
  scored: number;
  failed: number;
  chunks: number;
  output: string;
  failedFile: string;
}

export interface SubmitOptions {
  jobId?: string;
  /** Attempts per chunk (retries with exponential backoff). */
  attempts?: number;
  backoffMs?: number;
}

export interface Submitted {
  jobId: string;
  chunks: number;
  rows: number;
  /** False when a job with this id was already there (nothing was added). */
  created: boolean;
}

function pad(n: number): string {
  return String(n).padStart(6, '0');
}

function connectionOf(redisUrl: string): ConnectionOptions {
  return { url: redisUrl, maxRetriesPerRequest: null };
}

export function partsDirOf(spec: BatchJobSpec, jobId: string): string {
  return `${spec.output}.parts-${jobId}`;
}

async function defaultJobId(spec: BatchJobSpec): Promise<string> {
  const s = await stat(spec.input);
  const digest = createHash('sha256')
    .update(JSON.stringify({ ...spec, size: s.size, mtimeMs: s.mtimeMs }))
    .digest('hex')
    .slice(0, 16);
  return `batch-${digest}`;
}

/** Builds a spec from paths and options, resolving paths and formats. */
export function batchJobSpec(options: Omit<BatchJobSpec, 'inputFormat' | 'outputFormat' | 'chunkRows'> & Partial<Pick<BatchJobSpec, 'inputFormat' | 'outputFormat' | 'chunkRows'>>): BatchJobSpec {
  const input = path.resolve(options.input);
  const output = path.resolve(options.output);
  return {
    ...options,
    input,
    output,
    inputFormat: options.inputFormat ?? formatOf(input),
    outputFormat: options.outputFormat ?? formatOf(output),
    chunkRows: options.chunkRows ?? 10_000,
  };
}

/** Splits the input into chunks (one streaming pass) and enqueues the job's flow. */
export async function submitBatchJob(redisUrl: string, spec: BatchJobSpec, options: SubmitOptions = {}): Promise<Submitted> {
  await stat(spec.input).catch(() => {
    throw new InvalidInputError(`the input file '${spec.input}' does not exist`);
  });
  const jobId = options.jobId ?? (await defaultJobId(spec));
  if (!/^[A-Za-z0-9_.-]+$/.test(jobId) || /^\d+$/.test(jobId)) throw new InvalidInputError(`job id '${jobId}' must be letters, digits, '_', '.', '-' and not only digits`);
  const queue = new Queue(BATCH_QUEUE, { connection: connectionOf(redisUrl) });
  const flows = new FlowProducer({ connection: connectionOf(redisUrl) });
  try {
    const existing = await Job.fromId(queue, jobId);
    if (existing) {
      const data = existing.data as AssembleData;
      return { jobId, chunks: data.chunks, rows: data.rows, created: false };
    }
    const partsDir = partsDirOf(spec, jobId);
    let header: Line | undefined;
    const children: ChunkData[] = [];
    let current: ChunkData | undefined;
    let rows = 0;
    for await (const line of readLines(spec.input)) {
      if (spec.inputFormat === 'csv' && header === undefined) {
        header = line;
        continue;
      }
      if (!current) {
        current = { jobId, n: children.length, start: line.start, end: line.end, firstRow: rows, rows: 0, partsDir, spec, ...(header ? { header: header.text } : {}) };
        children.push(current);
      }
      current.end = line.end;
      current.rows++;
      rows++;
      if (current.rows >= spec.chunkRows) current = undefined;
    }
    const attempts = options.attempts ?? 3;
    const backoff = { type: 'exponential' as const, delay: options.backoffMs ?? 1000 };
    const parent: AssembleData = { jobId, chunks: children.length, rows, partsDir, spec, submittedAt: Date.now() };
    await flows.add({
      name: 'assemble',
      queueName: BATCH_QUEUE,
      data: parent,
      opts: { jobId, attempts, backoff, removeOnComplete: false, removeOnFail: false },
      children: children.map((c) => ({
        name: 'chunk',
        queueName: BATCH_QUEUE,
        data: c,
        opts: { jobId: `${jobId}-chunk-${pad(c.n)}`, attempts, backoff, removeOnComplete: false, removeOnFail: false },
      })),
    });
    return { jobId, chunks: children.length, rows, created: true };
  } finally {
    await flows.close();
    await queue.close();
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export interface WorkerOptions {
  /** The scorer of a model (called once per model and version; the worker keeps it). */
  scorerFor: (model: string, version: string | undefined) => Promise<Scorer>;
  /** Chunks processed at once by this worker. */
  concurrency?: number;
  logger?: Logger;
  /** Names this worker in chunk outcomes. */
  name?: string;
}

export interface BatchWorker {
  readonly name: string;
  /** Waits for the chunks in progress, then closes the queue connection and the scorers. */
  close(): Promise<void>;
}

export function startBatchWorker(redisUrl: string, options: WorkerOptions): BatchWorker {
  const name = options.name ?? `${os.hostname()}-${process.pid}`;
  const scorers = new Map<string, Promise<Scorer>>();
  const scorerOf = (model: string, version: string | undefined): Promise<Scorer> => {
    const key = `${model}\u0000${version ?? ''}`;
    let s = scorers.get(key);
    if (!s) {
      s = options.scorerFor(model, version);
      s.catch(() => scorers.delete(key));
      scorers.set(key, s);
    }
    return s;
  };

  const processChunk = async (job: Job<ChunkData>): Promise<ChunkOutcome> => {
    const c = job.data;
    const started = Date.now();
    const base = path.join(c.partsDir, `chunk-${pad(c.n)}`);
    // A chunk whose results were written but whose completion was not recorded (the worker died between).
    const done = await readJson<ChunkOutcome>(`${base}.json`);
    if (done) return done;
    await mkdir(c.partsDir, { recursive: true });
    const scorer = await scorerOf(c.spec.model, c.spec.version);
    const metadata = await scorer.metadata();
    const layout = makeLayout(c.spec.inputFormat, metadata, c.header, {
      ...(c.spec.idColumn ? { idColumn: c.spec.idColumn } : {}),
      ...(c.spec.excludeColumns ? { excludeColumns: c.spec.excludeColumns } : {}),
    });
    const lines: Array<{ line: Line; index: number }> = [];
    let index = c.firstRow;
    for await (const line of readLines(c.spec.input, c.start, c.end)) lines.push({ line, index: index++ });
    const maxBatch = Number(metadata.parameters?.['max_batch_size'] ?? 0);
    const result = await scoreChunk(lines, {
      scorer,
      metadata,
      layout,
      outputFormat: c.spec.outputFormat,
      batchSize: c.spec.batchSize ?? (maxBatch > 0 ? maxBatch : 64),
      concurrency: c.spec.concurrency ?? 4,
      correlation: `${c.jobId}-${c.n}`,
    });
    await writeAtomically(`${base}.out`, result.lines.length > 0 ? `${result.lines.join('\n')}\n` : '');
    await writeAtomically(`${base}.failed.jsonl`, result.failures.length > 0 ? `${result.failures.map((f) => JSON.stringify(f)).join('\n')}\n` : '');
    const outcome: ChunkOutcome = { n: c.n, rows: lines.length, scored: result.scored, failed: result.failures.length, worker: name, ms: Date.now() - started };
    await writeAtomically(`${base}.json`, JSON.stringify(outcome));
    await job.updateProgress(100);
    return outcome;
  };

  const assemble = async (job: Job<AssembleData>): Promise<JobOutcome> => {
    const a = job.data;
    const spec = a.spec;
    const scorer = await scorerOf(spec.model, spec.version);
    const metadata = await scorer.metadata();
    const layout = makeLayout(spec.inputFormat, metadata, await readCsvHeader(spec), {
      ...(spec.idColumn ? { idColumn: spec.idColumn } : {}),
      ...(spec.excludeColumns ? { excludeColumns: spec.excludeColumns } : {}),
    });
    const failedFile = `${spec.output}.failed.jsonl`;
    const tmpOut = `${spec.output}.${process.pid}.tmp`;
    const tmpFailed = `${failedFile}.${process.pid}.tmp`;
    const head = outputHeader(spec.outputFormat, layout.idColumn, metadata);
    const out = createWriteStream(tmpOut);
    const failed = createWriteStream(tmpFailed);
    let rows = 0;
    let scored = 0;
    let failures = 0;
    try {
      if (head !== undefined) out.write(`${head}\n`);
      for (let n = 0; n < a.chunks; n++) {
        const base = path.join(a.partsDir, `chunk-${pad(n)}`);
        const outcome = await readJson<ChunkOutcome>(`${base}.json`);
        if (!outcome) throw new Error(`chunk ${n} of job ${a.jobId} has no results in ${a.partsDir}`);
        rows += outcome.rows;
        scored += outcome.scored;
        failures += outcome.failed;
        await append(`${base}.out`, out);
        await append(`${base}.failed.jsonl`, failed);
      }
    } finally {
      await new Promise<void>((resolve) => out.end(resolve));
      await new Promise<void>((resolve) => failed.end(resolve));
    }
    await rename(tmpOut, spec.output);
    await rename(tmpFailed, failedFile);
    await rm(a.partsDir, { recursive: true, force: true });
    return { rows, scored, failed: failures, chunks: a.chunks, output: spec.output, failedFile };
  };

  const worker = new Worker(
    BATCH_QUEUE,
    async (job: Job) => (job.name === 'assemble' ? assemble(job as Job<AssembleData>) : processChunk(job as Job<ChunkData>)),
    { connection: connectionOf(redisUrl), concurrency: options.concurrency ?? 1 },
  );
  worker.on('failed', (job, error) => options.logger?.warn({ job: job?.id, attempt: job?.attemptsMade, err: error }, 'batch job step failed'));
  worker.on('error', (error) => options.logger?.error({ err: error }, 'batch worker error'));
  return {
    name,
    async close() {
      await worker.close();
      for (const s of scorers.values()) await (await s.catch(() => undefined))?.close();
    },
  };
}

/** Copies a file to the end of an open write stream (which stays open). */
async function append(file: string, to: NodeJS.WritableStream): Promise<void> {
  for await (const chunk of createReadStream(file)) if (!to.write(chunk as Buffer)) await once(to, 'drain');
}

/** The CSV header line of the input (undefined for JSON Lines). */
async function readCsvHeader(spec: BatchJobSpec): Promise<string | undefined> {
  if (spec.inputFormat !== 'csv') return undefined;
  for await (const line of readLines(spec.input)) return line.text;
  return undefined;
}

export interface BatchJobStatus {
  id: string;
  state: string;
  model: string;
  version?: string;
  input: string;
  output: string;
  submittedAt: string;
  chunks: { total: number; done: number; failed: number; pending: number };
  rows: { total: number; scored: number; failed: number; done: number };
  /** Fraction of rows done, 0..1. */
  progress: number;
  /** Chunks done per worker. */
  workers: Record<string, number>;
  result?: JobOutcome;
  error?: string;
}

/** The status of a job as JSON (for `inferd batch status` and GET /v2/admin/jobs/{id}); undefined when unknown. */
export async function batchJobStatus(redisUrl: string, jobId: string): Promise<BatchJobStatus | undefined> {
  const queue = new Queue(BATCH_QUEUE, { connection: connectionOf(redisUrl) });
  try {
    return await statusOf(queue, jobId);
  } finally {
    await queue.close();
  }
}

/** Same as batchJobStatus on a queue the caller keeps open (a server answering status requests). */
export async function statusOf(queue: Queue, jobId: string): Promise<BatchJobStatus | undefined> {
  const job = (await Job.fromId(queue, jobId)) as Job<AssembleData, JobOutcome> | undefined;
  if (!job || job.name !== 'assemble') return undefined;
  const data = job.data;
  const state = await job.getState();
  const counts = await job.getDependenciesCount({ processed: true, unprocessed: true, failed: true });
  const values = Object.values(await job.getChildrenValues<ChunkOutcome>());
  const scored = values.reduce((s, v) => s + (v?.scored ?? 0), 0);
  const failedRows = values.reduce((s, v) => s + (v?.failed ?? 0), 0);
  const doneRows = values.reduce((s, v) => s + (v?.rows ?? 0), 0);
  const failedChunks = (counts as { failed?: number }).failed ?? 0;
  const status: BatchJobStatus = {
    id: jobId,
    state,
    model: data.spec.model,
    ...(data.spec.version !== undefined ? { version: data.spec.version } : {}),
    input: data.spec.input,
    output: data.spec.output,
    submittedAt: new Date(data.submittedAt).toISOString(),
    chunks: { total: data.chunks, done: values.length, failed: failedChunks, pending: data.chunks - values.length - failedChunks },
    rows: { total: data.rows, scored, failed: failedRows, done: doneRows },
    progress: data.rows === 0 ? 1 : doneRows / data.rows,
    workers: {},
  };
  for (const v of values) if (v) status.workers[v.worker] = (status.workers[v.worker] ?? 0) + 1;
  if (state === 'completed' && job.returnvalue) status.result = job.returnvalue;
  if (job.failedReason) status.error = job.failedReason;
  return status;
}
