/**
 * Tabular data for drift: reference (training) data and current (live or offline) data as
 * columns, read from CSV (a header row, then one row per example; streamed, see csv-stream.ts)
 * or JSONL (one JSON object per line, keys are column names; a value that is a list is spread
 * into name[0], name[1], ...; read whole, up to MAX_DATA_BYTES).
 *
 * A column is numeric when every present cell is a finite number; otherwise it holds strings.
 * Missing cells (empty, NaN, NA, null) are NaN in a numeric column and null in a string one.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import { parseCsv } from '../validation/ranges.js';
import { readCsvColumns } from './csv-stream.js';

export type Column = { name: string; kind: 'numeric'; values: Float64Array } | { name: string; kind: 'string'; values: Array<string | null> };

export interface Table {
  rows: number;
  columns: Column[];
}

/** Bytes read so far and the file's size, for a progress bar. */
export type ReadProgress = (read: number, total: number) => void;

const MISSING = new Set(['', 'nan', 'NaN', 'NA', 'null', 'NULL', 'None']);

/** Bound on a JSONL file, which is read whole (CSV files are streamed and have none). */
export const MAX_DATA_BYTES = 512 * 1024 * 1024;

async function readText(file: string, onProgress?: ReadProgress): Promise<string> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    throw new InvalidInputError(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (size > MAX_DATA_BYTES) throw new InvalidInputError(`${file} is ${size} bytes, above the ${MAX_DATA_BYTES}-byte limit for drift data`);
  const chunks: Buffer[] = [];
  let read = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    chunks.push(chunk as Buffer);
    read += (chunk as Buffer).length;
    onProgress?.(read, size);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Builds typed columns from raw cells, deciding each column's kind. */
export function tableFromCells(names: readonly string[], cells: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>): Table {
  const rows = cells.length;
  const columns = names.map((name, c): Column => {
    let numeric = true;
    for (let r = 0; r < rows && numeric; r++) {
      const cell = cells[r]![c];
      if (cell === null || cell === undefined) continue;
      if (typeof cell === 'number') continue;
      if (MISSING.has(cell.trim())) continue;
      if (!Number.isFinite(Number(cell))) numeric = false;
    }
    if (numeric) {
      const values = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        const cell = cells[r]![c];
        values[r] = cell === null || cell === undefined || (typeof cell === 'string' && MISSING.has(cell.trim())) ? Number.NaN : Number(cell);
      }
      return { name, kind: 'numeric', values };
    }
    const values = new Array<string | null>(rows);
    for (let r = 0; r < rows; r++) {
      const cell = cells[r]![c];
      values[r] = cell === null || cell === undefined || (typeof cell === 'string' && MISSING.has(cell.trim())) ? null : String(cell);
    }
    return { name, kind: 'string', values };
  });
  return { rows, columns };
}

export function parseCsvTable(text: string, source = 'the CSV'): Table {
  const records = parseCsv(text);
  const header = records[0];
  if (header === undefined) throw new InvalidInputError(`${source} is empty`);
  const names = header.map((h) => h.trim());
  const seen = new Set<string>();
  for (const n of names) {
    if (n === '') throw new InvalidInputError(`${source} has an empty column name in its header`);
    if (seen.has(n)) throw new InvalidInputError(`${source} has the column '${n}' twice`);
    seen.add(n);
  }
  const body = records.slice(1);
  body.forEach((record, i) => {
    if (record.length !== names.length) throw new InvalidInputError(`${source} line ${i + 2} has ${record.length} fields, the header has ${names.length}`);
  });
  return tableFromCells(names, body);
}

export function parseJsonlTable(text: string, source = 'the JSONL file'): Table {
  const names: string[] = [];
  const index = new Map<string, number>();
  const rows: Array<Array<string | number | null>> = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new InvalidInputError(`${source} line ${i + 1} is not JSON: ${(error as Error).message}`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new InvalidInputError(`${source} line ${i + 1} is not a JSON object`);
    const row: Array<string | number | null> = [];
    const put = (name: string, value: unknown): void => {
      let c = index.get(name);
      if (c === undefined) {
        c = names.length;
        names.push(name);
        index.set(name, c);
      }
      if (value !== null && typeof value === 'object') throw new InvalidInputError(`${source} line ${i + 1}: '${name}' is nested too deeply`);
      row[c] = value === null || value === undefined ? null : typeof value === 'number' ? value : String(value);
    };
    for (const [key, value] of Object.entries(record as Record<string, unknown>)) {
      if (Array.isArray(value)) value.forEach((v, k) => put(`${key}[${k}]`, v));
      else put(key, value);
    }
    rows.push(row);
  });
  return tableFromCells(names, rows);
}

/** Reads a .csv or .jsonl/.ndjson file into columns. */
export async function readTable(file: string, onProgress?: ReadProgress): Promise<Table> {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return parseJsonlTable(await readText(file, onProgress), file);
  if (ext === '.csv' || ext === '.txt' || ext === '') return readCsvColumns(file, onProgress);
  throw new InvalidInputError(`${file}: unknown data format '${ext}' (use .csv or .jsonl)`);
}

export function columnByName(table: Table, name: string): Column | undefined {
  return table.columns.find((c) => c.name === name);
}
