/**
 * Scores one chunk of rows: parses them, sends them to the model in batches (several in flight,
 * so a server's dynamic batcher and workers stay busy), and returns the output lines in row
 * order plus the rows that failed. A batch the model refuses is retried row by row so one bad
 * row does not fail its neighbours; errors of the service itself (unavailable, overloaded)
 * are retried with backoff and then fail the chunk.
 */
import { InferdError } from '../../core/errors.js';
import type { ModelMetadata } from '../../core/types.js';
import type { Line } from './lines.js';
import type { Scorer } from './scorer.js';
import { batchTensors, formatOutputs, parseRow, type Row, type RowLayout, type TableFormat } from './table.js';

export interface FailedRow {
  row: number;
  id?: string;
  error: string;
  code: string;
}

export interface ChunkResult {
  lines: string[];
  failures: FailedRow[];
  scored: number;
}

export interface ChunkOptions {
  scorer: Scorer;
  metadata: ModelMetadata;
  layout: RowLayout;
  outputFormat: TableFormat;
  batchSize: number;
  concurrency: number;
  /** Prefix of the correlation ids of the chunk's requests (job and chunk). */
  correlation: string;
}

const TRANSIENT_ATTEMPTS = 4;

function isTransient(error: unknown): boolean {
  return error instanceof InferdError && (error.code === 'UNAVAILABLE' || error.code === 'RESOURCE_EXHAUSTED');
}

function codeOf(error: unknown): string {
  return error instanceof InferdError ? error.code : 'INTERNAL';
}

export async function scoreChunk(lines: ReadonlyArray<{ line: Line; index: number }>, options: ChunkOptions): Promise<ChunkResult> {
  const { scorer, metadata, layout, outputFormat, batchSize } = options;
  const failures: FailedRow[] = [];
  // Rows are parsed batch by batch, just before they are sent: parsed values live for one
  // request instead of a whole chunk, which keeps them out of the old generation of the heap.
  const groups: Array<ReadonlyArray<{ line: Line; index: number }>> = [];
  for (let i = 0; i < lines.length; i += batchSize) groups.push(lines.slice(i, i + batchSize));
  const parse = (group: ReadonlyArray<{ line: Line; index: number }>): Row[] => {
    const rows: Row[] = [];
    for (const { line, index } of group) {
      try {
        rows.push(parseRow(layout, line.text, index));
      } catch (error) {
        failures.push({ row: index + 1, error: `row ${index + 1} ${(error as Error).message}`, code: codeOf(error) });
      }
    }
    return rows;
  };
  const outputs: string[][] = new Array(groups.length);
  let next = 0;
  let batchNumber = 0;

  const infer = async (batch: Row[]): Promise<string[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await scorer.infer({ inputs: batchTensors(layout, batch) }, `${options.correlation}-${batchNumber++}`);
        return formatOutputs(outputFormat, layout.idColumn, metadata, batch, response);
      } catch (error) {
        if (!isTransient(error) || attempt >= TRANSIENT_ATTEMPTS) throw error;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  };

  const runBatch = async (k: number): Promise<void> => {
    const batch = parse(groups[k]!);
    if (batch.length === 0) {
      outputs[k] = [];
      return;
    }
    try {
      outputs[k] = await infer(batch);
    } catch (error) {
      if (isTransient(error) || batch.length === 1) {
        if (isTransient(error)) throw error;
        failures.push({ row: batch[0]!.index + 1, id: batch[0]!.id, error: (error as Error).message, code: codeOf(error) });
        outputs[k] = [];
        return;
      }
      // Find the bad rows: one request per row.
      const lines: string[] = [];
      for (const row of batch) {
        try {
          lines.push(...(await infer([row])));
        } catch (rowError) {
          if (isTransient(rowError)) throw rowError;
          failures.push({ row: row.index + 1, id: row.id, error: (rowError as Error).message, code: codeOf(rowError) });
        }
      }
      outputs[k] = lines;
    }
  };

  const workers = Array.from({ length: Math.min(options.concurrency, groups.length) }, async () => {
    while (next < groups.length) await runBatch(next++);
  });
  await Promise.all(workers);
  failures.sort((a, b) => a.row - b.row);
  const out = outputs.flat();
  return { lines: out, failures, scored: out.length };
}
