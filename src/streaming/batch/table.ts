/**
 * Rows of a CSV or JSON Lines file as model inputs, and scored rows as output lines. CSV: a
 * header line naming the columns, one row per line, RFC 4180 quoting within a line (a quoted
 * field may not span lines). JSON Lines: one object per line, either columns by name or, for a
 * model input, its name with an array of the row's values.
 */
import { InvalidInputError } from '../../core/errors.js';
import type { InferenceResponse, ModelMetadata, Tensor, TensorMetadata } from '../../core/types.js';
import { allocate, type Datatype, type TensorData } from '../../core/datatypes.js';

export type TableFormat = 'csv' | 'jsonl';

export function formatOf(file: string, flag?: string): TableFormat {
  const f = flag ?? (/\.jsonl$|\.ndjson$/i.test(file) ? 'jsonl' : /\.csv$/i.test(file) ? 'csv' : undefined);
  if (f !== 'csv' && f !== 'jsonl') throw new InvalidInputError(`cannot tell the format of '${file}': name it .csv or .jsonl`);
  return f;
}

/** Splits one CSV line into fields (quotes and doubled quotes inside quotes). */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"') {
        if (line[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) throw new InvalidInputError('unterminated quoted field');
  out.push(field);
  return out;
}

export function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** How rows of a file become the model's input tensors. */
export interface RowLayout {
  format: TableFormat;
  /** CSV header columns (CSV only). */
  columns: string[];
  idColumn: string | undefined;
  /** Position of the id column in a CSV row; -1 when rows are numbered instead. */
  idIndex: number;
  /** Per model input: its metadata, the number of values per row, and (CSV) the column indexes. */
  inputs: Array<{ meta: TensorMetadata; perRow: number; rowShape: number[]; columnIndexes: number[] }>;
}

export interface LayoutOptions {
  idColumn?: string;
  /** Columns that are neither the id nor features (a label, say). */
  excludeColumns?: string[];
}

function rowShapeOf(meta: TensorMetadata): number[] {
  const [batch, ...rest] = meta.shape;
  if (batch !== -1) throw new InvalidInputError(`input '${meta.name}' has no batch axis (shape [${meta.shape.join(', ')}]); batch scoring needs one`);
  if (rest.some((d) => d < 0)) throw new InvalidInputError(`input '${meta.name}' has a dynamic axis besides the batch axis; batch scoring needs fixed row shapes`);
  return rest;
}

export function makeLayout(format: TableFormat, metadata: ModelMetadata, header: string | undefined, options: LayoutOptions): RowLayout {
  const inputs = metadata.inputs.map((meta) => {
    if (meta.datatype === 'BYTES') throw new InvalidInputError(`input '${meta.name}' is BYTES; batch scoring reads numeric inputs`);
    const rowShape = rowShapeOf(meta);
    return { meta, perRow: rowShape.reduce((a, b) => a * b, 1), rowShape, columnIndexes: [] as number[] };
  });
  if (format === 'jsonl') return { format, columns: [], idColumn: options.idColumn ?? 'id', idIndex: -1, inputs };
  if (header === undefined) throw new InvalidInputError('the CSV file is empty (a header line naming the columns is required)');
  const columns = splitCsvLine(header).map((c) => c.trim());
  const idColumn = options.idColumn ?? (columns.includes('id') ? 'id' : undefined);
  if (idColumn !== undefined && !columns.includes(idColumn)) throw new InvalidInputError(`the id column '${idColumn}' is not in the CSV header`);
  for (const c of options.excludeColumns ?? []) if (!columns.includes(c)) throw new InvalidInputError(`the excluded column '${c}' is not in the CSV header`);
  if (inputs.length !== 1) throw new InvalidInputError(`the model has ${inputs.length} inputs; CSV rows feed one input (use JSON Lines with one key per input)`);
  const features = columns.map((c, i) => ({ c, i })).filter(({ c }) => c !== idColumn && !(options.excludeColumns ?? []).includes(c));
  const input = inputs[0]!;
  if (features.length !== input.perRow) {
    throw new InvalidInputError(
      `the model's input '${input.meta.name}' takes ${input.perRow} values per row but the CSV has ${features.length} feature columns (${idColumn ? `id column '${idColumn}', ` : ''}exclude others with --exclude-columns)`,
    );
  }
  input.columnIndexes = features.map(({ i }) => i);
  return { format, columns, idColumn, idIndex: idColumn === undefined ? -1 : columns.indexOf(idColumn), inputs };
}

/** One parsed row: its position in the file (0-based, data rows only), id, and values per input. */
export interface Row {
  index: number;
  id: string;
  values: number[][];
}

export function parseRow(layout: RowLayout, text: string, index: number): Row {
  if (layout.format === 'csv') {
    const fields = splitCsvLine(text);
    if (fields.length !== layout.columns.length) throw new InvalidInputError(`has ${fields.length} fields, the header has ${layout.columns.length}`);
    const id = layout.idIndex >= 0 ? fields[layout.idIndex]! : String(index + 1);
    const values: number[][] = [];
    for (const input of layout.inputs) {
      const indexes = input.columnIndexes;
      const row = new Array<number>(indexes.length);
      for (let k = 0; k < indexes.length; k++) {
        const raw = fields[indexes[k]!]!;
        // Number() skips surrounding blanks; it reads a blank field as 0, which is not a value.
        const v = Number(raw);
        if (Number.isNaN(v) || raw.trim() === '') throw new InvalidInputError(`column '${layout.columns[indexes[k]!]}' is not a number: '${raw.trim()}'`);
        row[k] = v;
      }
      values.push(row);
    }
    return { index, id, values };
  }
  let object: unknown;
  try {
    object = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError(`is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof object !== 'object' || object === null || Array.isArray(object)) throw new InvalidInputError('is not a JSON object');
  const record = object as Record<string, unknown>;
  const rawId = layout.idColumn !== undefined ? record[layout.idColumn] : undefined;
  const id = rawId === undefined ? String(index + 1) : String(rawId);
  const values = layout.inputs.map((input) => {
    const direct = record[input.meta.name];
    let flat: unknown[];
    if (Array.isArray(direct)) flat = direct.flat(Infinity);
    else {
      flat = Object.entries(record)
        .filter(([k]) => k !== layout.idColumn)
        .map(([, v]) => v);
      if (layout.inputs.length !== 1) throw new InvalidInputError(`has no array under the input name '${input.meta.name}'`);
    }
    if (flat.length !== input.perRow) throw new InvalidInputError(`input '${input.meta.name}' needs ${input.perRow} values, the row has ${flat.length}`);
    return flat.map((v, k) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidInputError(`input '${input.meta.name}' value ${k} is not a finite number`);
      return v;
    });
  });
  return { index, id, values };
}

/** The input tensors of a batch of rows. */
export function batchTensors(layout: RowLayout, rows: readonly Row[]): Tensor[] {
  return layout.inputs.map((input, k) => {
    const data = allocate(input.meta.datatype as Datatype, rows.length * input.perRow) as TensorData;
    const target = data as unknown as { [i: number]: number | bigint };
    const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
    let o = 0;
    for (const row of rows) for (const v of row.values[k]!) target[o++] = big ? BigInt(Math.trunc(v)) : v;
    return { name: input.meta.name, datatype: input.meta.datatype as Datatype, shape: [rows.length, ...input.rowShape], data };
  });
}

/** Output columns: an output with one value per row keeps its name, others get name_0, name_1... */
export function outputColumns(metadata: ModelMetadata): string[] {
  const cols: string[] = [];
  for (const o of metadata.outputs) {
    const per = o.shape.slice(1).reduce((a, b) => a * Math.max(b, 1), 1);
    if (per === 1) cols.push(o.name);
    else for (let i = 0; i < per; i++) cols.push(`${o.name}_${i}`);
  }
  return cols;
}

export function outputHeader(format: TableFormat, idColumn: string | undefined, metadata: ModelMetadata): string | undefined {
  if (format === 'jsonl') return undefined;
  return [idColumn ?? 'row', ...outputColumns(metadata)].map(csvField).join(',');
}

function valueAt(data: TensorData, i: number): number | string {
  const v = (data as unknown as ArrayLike<unknown>)[i];
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return String(v);
}

/** One output line per row of a batch response, in row order. */
export function formatOutputs(format: TableFormat, idColumn: string | undefined, metadata: ModelMetadata, rows: readonly Row[], response: InferenceResponse): string[] {
  const outputs = metadata.outputs.map((m) => {
    const t = response.outputs.find((o) => o.name === m.name);
    if (!t) throw new InvalidInputError(`the response has no output '${m.name}'`);
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    return { name: m.name, t, per };
  });
  return rows.map((row, r) => {
    if (format === 'csv') {
      let line = csvField(row.id);
      for (const { t, per } of outputs) for (let i = 0; i < per; i++) line += `,${valueAt(t.data, r * per + i)}`;
      return line;
    }
    const out: Record<string, unknown> = {};
    for (const { name, t, per } of outputs) {
      const values = Array.from({ length: per }, (_, i) => valueAt(t.data, r * per + i));
      out[name] = t.shape.length === 1 ? values[0] : values;
    }
    return JSON.stringify({ [idColumn ?? 'id']: row.id, outputs: out });
  });
}
