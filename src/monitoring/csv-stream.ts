/**
 * CSV into typed columns without holding the text: two streaming passes over the file, the first
 * deciding each column's kind (numeric when every present cell is a finite number) and counting
 * rows, the second filling a Float64Array per numeric column (strings only for text columns).
 * Memory is 8 bytes per numeric cell, whatever the file's size. RFC 4180: quoted fields, doubled
 * quotes, CRLF or LF, a UTF-8 byte-order mark.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { InvalidInputError } from '../core/errors.js';
import type { Column, ReadProgress, Table } from './dataset.js';

const MISSING = new Set(['', 'nan', 'NaN', 'NA', 'null', 'NULL', 'None']);

/** Incremental RFC 4180 record splitter. */
export class CsvSplitter {
  private field = '';
  private record: string[] = [];
  private quoted = false;
  private quoteSeen = false;
  private afterCr = false;
  private started = false;

  constructor(private readonly onRecord: (record: string[]) => void) {}

  feed(chunk: string): void {
    let i = 0;
    if (!this.started) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) i = 1;
    }
    for (; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.afterCr) {
        this.afterCr = false;
        if (c === '\n') continue;
      }
      if (this.quoted) {
        if (this.quoteSeen) {
          this.quoteSeen = false;
          if (c === '"') {
            this.field += '"';
            continue;
          }
          this.quoted = false;
          // fall through: c is the character after the closing quote
        } else if (c === '"') {
          this.quoteSeen = true;
          continue;
        } else {
          this.field += c;
          continue;
        }
      }
      if (c === '"' && this.field === '') this.quoted = true;
      else if (c === ',') {
        this.record.push(this.field);
        this.field = '';
      } else if (c === '\n' || c === '\r') {
        this.endRecord();
        if (c === '\r') this.afterCr = true;
      } else this.field += c;
    }
  }

  end(): void {
    if (this.quoted && !this.quoteSeen) throw new InvalidInputError('the CSV ends inside a quoted field');
    this.quoted = false;
    this.quoteSeen = false;
    this.endRecord();
  }

  private endRecord(): void {
    this.record.push(this.field);
    this.field = '';
    const record = this.record;
    this.record = [];
    if (!(record.length === 1 && record[0] === '')) this.onRecord(record);
  }
}

async function pass(file: string, size: number, offset: number, onProgress: ReadProgress | undefined, onRecord: (record: string[]) => void): Promise<void> {
  const splitter = new CsvSplitter(onRecord);
  let read = 0;
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  stream.setEncoding('utf8');
  for await (const chunk of stream) {
    splitter.feed(chunk as string);
    read = stream.bytesRead;
    onProgress?.(offset + read, 2 * size);
  }
  splitter.end();
}

/** Reads a CSV file into typed columns in two streaming passes. */
export async function readCsvColumns(file: string, onProgress?: ReadProgress): Promise<Table> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    throw new InvalidInputError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let names: string[] | undefined;
  let numeric: boolean[] = [];
  let rows = 0;
  await pass(file, size, 0, onProgress, (record) => {
    if (names === undefined) {
      names = record.map((h) => h.trim());
      const seen = new Set<string>();
      for (const n of names) {
        if (n === '') throw new InvalidInputError(`${file} has an empty column name in its header`);
        if (seen.has(n)) throw new InvalidInputError(`${file} has the column '${n}' twice`);
        seen.add(n);
      }
      numeric = names.map(() => true);
      return;
    }
    if (record.length !== names.length) throw new InvalidInputError(`${file} line ${rows + 2} has ${record.length} fields, the header has ${names.length}`);
    for (let c = 0; c < record.length; c++) {
      if (!numeric[c]) continue;
      const cell = record[c]!.trim();
      if (!MISSING.has(cell) && !Number.isFinite(Number(cell))) numeric[c] = false;
    }
    rows++;
  });
  if (names === undefined) throw new InvalidInputError(`${file} is empty`);
  const header = names;
  const columns: Column[] = header.map((name, c) =>
    numeric[c] ? { name, kind: 'numeric', values: new Float64Array(rows) } : { name, kind: 'string', values: new Array<string | null>(rows) },
  );
  let row = -1;
  await pass(file, size, size, onProgress, (record) => {
    if (row >= 0 && row < rows) {
      for (let c = 0; c < columns.length; c++) {
        const cell = record[c]!;
        const column = columns[c]!;
        const missing = MISSING.has(cell.trim());
        if (column.kind === 'numeric') column.values[row] = missing ? Number.NaN : Number(cell);
        else column.values[row] = missing ? null : cell;
      }
    }
    row++;
  });
  if (row !== rows) throw new InvalidInputError(`${file} changed while it was read`);
  return { rows, columns };
}
