/**
 * `inferd batch score`: one file through one model on this machine. The input is streamed in
 * chunks (memory holds one chunk whatever the file size), results are appended in input order,
 * failed rows go to a side file, and after every chunk a checkpoint records how far the input,
 * output and side file have got, so an interrupted run resumes after its last finished chunk.
 */
import { open, readFile, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { InvalidInputError } from '../../core/errors.js';
import { writeAtomically } from './files.js';
import { scoreChunk, type FailedRow } from './chunk.js';
import { readLines, type Line } from './lines.js';
import type { Scorer } from './scorer.js';
import { formatOf, makeLayout, outputHeader, type TableFormat } from './table.js';

export interface ScoreOptions {
  scorer: Scorer;
  input: string;
  output: string;
  inputFormat?: TableFormat;
  outputFormat?: TableFormat;
  idColumn?: string;
  excludeColumns?: string[];
  /** Rows per inference request; default the model's max_batch_size, else 64. */
  batchSize?: number;
  /** Rows per checkpoint. */
  chunkRows?: number;
  /** Batches in flight. */
  concurrency?: number;
  /** Default `<output>.failed.jsonl`. */
  failedFile?: string;
  /** Ignore an existing checkpoint and start over. */
  restart?: boolean;
  /** Stops after the chunk in progress (its checkpoint is written). */
  signal?: AbortSignal;
  onProgress?: (progress: ScoreProgress) => void;
}

export interface ScoreProgress {
  rowsDone: number;
  failed: number;
  bytesDone: number;
  bytesTotal: number;
  elapsedMs: number;
}

export interface ScoreSummary {
  complete: boolean;
  rows: number;
  scored: number;
  failed: number;
  /** Data rows skipped because a checkpoint said they were done. */
  resumedAt: number;
  seconds: number;
  output: string;
  failedFile: string;
}

interface Checkpoint {
  version: 1;
  input: string;
  inputSize: number;
  inputMtimeMs: number;
  model: string;
  modelVersion: string | null;
  /** Byte offset in the input of the first row not yet scored. */
  inputOffset: number;
  rowsDone: number;
  scored: number;
  failed: number;
  outputBytes: number;
  failedBytes: number;
}

export function checkpointPath(output: string): string {
  return `${output}.checkpoint.json`;
}

async function readCheckpoint(file: string): Promise<Checkpoint | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Checkpoint;
  } catch {
    return undefined;
  }
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then((s) => s.size, () => 0);
}

export async function scoreFile(options: ScoreOptions): Promise<ScoreSummary> {
  const started = Date.now();
  const { scorer } = options;
  const inputFormat = options.inputFormat ?? formatOf(options.input);
  const outputFormat = options.outputFormat ?? formatOf(options.output);
  const failedFile = options.failedFile ?? `${options.output}.failed.jsonl`;
  const checkpointFile = checkpointPath(options.output);
  const inputStat = await stat(options.input).catch(() => {
    throw new InvalidInputError(`the input file '${options.input}' does not exist`);
  });
  const metadata = await scorer.metadata();
  const maxBatch = Number(metadata.parameters?.['max_batch_size'] ?? 0);
  const batchSize = options.batchSize ?? (maxBatch > 0 ? maxBatch : 64);
  const chunkRows = options.chunkRows ?? 10_000;
  const concurrency = options.concurrency ?? 4;

  // The header (CSV) is the first line; data starts after it.
  let header: Line | undefined;
  if (inputFormat === 'csv') for await (const line of readLines(options.input)) {
    header = line;
    break;
  }
  const layout = makeLayout(inputFormat, metadata, header?.text, { ...(options.idColumn ? { idColumn: options.idColumn } : {}), ...(options.excludeColumns ? { excludeColumns: options.excludeColumns } : {}) });
  const dataStart = header?.end ?? 0;

  let state: Checkpoint = {
    version: 1,
    input: options.input,
    inputSize: inputStat.size,
    inputMtimeMs: inputStat.mtimeMs,
    model: scorer.model,
    modelVersion: scorer.version ?? null,
    inputOffset: dataStart,
    rowsDone: 0,
    scored: 0,
    failed: 0,
    outputBytes: 0,
    failedBytes: 0,
  };
  const previous = options.restart ? undefined : await readCheckpoint(checkpointFile);
  const resumable =
    previous !== undefined &&
    previous.inputSize === inputStat.size &&
    previous.inputMtimeMs === inputStat.mtimeMs &&
    previous.model === scorer.model &&
    previous.modelVersion === (scorer.version ?? null);
  if (resumable) {
    state = previous;
    // Anything past the checkpoint was written by the interrupted chunk: cut it off.
    if ((await sizeOf(options.output)) < state.outputBytes || (await sizeOf(failedFile)) < state.failedBytes) {
      throw new InvalidInputError(`the output files are shorter than the checkpoint '${checkpointFile}' says; rerun with --restart`);
    }
    await truncate(options.output, state.outputBytes);
    await writeFile(failedFile, '', { flag: 'a' });
    await truncate(failedFile, state.failedBytes);
  } else {
    const head = outputHeader(outputFormat, layout.idColumn, metadata);
    await writeFile(options.output, head !== undefined ? `${head}\n` : '');
    await writeFile(failedFile, '');
    state.outputBytes = await sizeOf(options.output);
    await writeAtomically(checkpointFile, JSON.stringify(state));
  }
  const resumedAt = resumable ? state.rowsDone : 0;

  const out: FileHandle = await open(options.output, 'a');
  const failed: FileHandle = await open(failedFile, 'a');
  let complete = true;
  try {
    let chunk: Array<{ line: Line; index: number }> = [];
    let index = state.rowsDone;
    // Two chunks in flight: the next one is parsed and queued while the model works on this one.
    // Results are written strictly in input order, and the checkpoint only after they are.
    const inFlight: Array<{ rows: Array<{ line: Line; index: number }>; result: ReturnType<typeof scoreChunk> }> = [];
    const writeOldest = async (): Promise<void> => {
      const { rows, result: pending } = inFlight.shift()!;
      const result = await pending;
      const text = result.lines.length > 0 ? `${result.lines.join('\n')}\n` : '';
      const failures = result.failures.map((f: FailedRow) => JSON.stringify(f)).join('\n');
      await out.write(text);
      if (failures) await failed.write(`${failures}\n`);
      await out.sync();
      await failed.sync();
      state = {
        ...state,
        inputOffset: rows[rows.length - 1]!.line.end,
        rowsDone: state.rowsDone + rows.length,
        scored: state.scored + result.scored,
        failed: state.failed + result.failures.length,
        outputBytes: state.outputBytes + Buffer.byteLength(text),
        failedBytes: state.failedBytes + (failures ? Buffer.byteLength(failures) + 1 : 0),
      };
      await writeAtomically(checkpointFile, JSON.stringify(state));
      options.onProgress?.({ rowsDone: state.rowsDone, failed: state.failed, bytesDone: state.inputOffset, bytesTotal: inputStat.size, elapsedMs: Date.now() - started });
    };
    const submit = (): void => {
      if (chunk.length === 0) return;
      const rows = chunk;
      chunk = [];
      const result = scoreChunk(rows, { scorer, metadata, layout, outputFormat, batchSize, concurrency, correlation: `batch-${rows[0]!.index}` });
      // Awaited in order by writeOldest; a failure surfaces there.
      result.catch(() => undefined);
      inFlight.push({ rows, result });
    };
    try {
      for await (const line of readLines(options.input, state.inputOffset)) {
        chunk.push({ line, index: index++ });
        if (chunk.length >= chunkRows) {
          submit();
          if (inFlight.length >= 2) await writeOldest();
          if (options.signal?.aborted) {
            complete = false;
            break;
          }
        }
      }
      if (complete) submit();
      while (inFlight.length > 0) await writeOldest();
    } catch (error) {
      await Promise.allSettled(inFlight.map((f) => f.result));
      throw error;
    }
  } finally {
    await out.close();
    await failed.close();
  }
  if (complete) await rm(checkpointFile, { force: true });
  return {
    complete,
    rows: state.rowsDone,
    scored: state.scored,
    failed: state.failed,
    resumedAt,
    seconds: (Date.now() - started) / 1000,
    output: options.output,
    failedFile,
  };
}
