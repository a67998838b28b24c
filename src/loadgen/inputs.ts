/**
 * Building the inputs of the requests a run sends: random tensors shaped after model metadata,
 * rows of a CSV file, or tensors from a JSON file.
 */
import { readFileSync } from 'node:fs';
import type { RequestInputs, RequestTensor, TensorSpec } from './types.js';

export class InputDataError extends Error {}

/** Distinct random payloads per run: enough to defeat trivial caching, few enough to pre-encode. */
export const RANDOM_PAYLOADS = 8;
/** Upper bound of distinct payloads taken from a data file. */
export const MAX_FILE_PAYLOADS = 1024;

export interface ShapeOptions {
  /** Full shapes given by the user, by input name (e.g. from `--shape name:1,30`). */
  readonly shapes?: Readonly<Record<string, readonly number[]>>;
  /** Size of dimension 0 where the model leaves it dynamic; defaults to 1. */
  readonly batchSize?: number;
}

/** Parses `name:1,30` into a name and a shape. */
export function parseShapeArg(arg: string): { name: string; shape: number[] } {
  const i = arg.lastIndexOf(':');
  if (i <= 0) throw new InputDataError(`--shape '${arg}' is not name:d0,d1,...`);
  const name = arg.slice(0, i);
  const shape = arg
    .slice(i + 1)
    .split(',')
    .map((d) => {
      const v = Number(d.trim());
      if (!Number.isInteger(v) || v < 0) throw new InputDataError(`--shape '${arg}': '${d}' is not a dimension`);
      return v;
    });
  return { name, shape };
}

/** The concrete shape of one input: user shape if given, else dynamic dims set to the batch size (dim 0) or 1. */
export function resolveShape(spec: TensorSpec, opts: ShapeOptions): number[] {
  const given = opts.shapes?.[spec.name];
  const dynamicBatch = spec.shape.length > 0 && spec.shape[0] === -1;
  if (given) {
    if (spec.shape.length > 0 && given.length !== spec.shape.length) {
      throw new InputDataError(
        `--shape for ${spec.name} has ${given.length} dimensions, the model has ${spec.shape.length} ([${spec.shape.join(',')}])`,
      );
    }
    given.forEach((d, k) => {
      const m = spec.shape[k];
      if (m !== undefined && m !== -1 && m !== d) {
        throw new InputDataError(`--shape for ${spec.name}: dimension ${k} is ${d}, the model fixes it at ${m}`);
      }
    });
    const out = [...given];
    if (dynamicBatch && opts.batchSize !== undefined) out[0] = opts.batchSize;
    return out;
  }
  return spec.shape.map((d, k) => (d !== -1 ? d : k === 0 ? (opts.batchSize ?? 1) : 1));
}

/** Inferences carried by one request: dimension 0 of the first input when the model batches, else 1. */
export function batchOf(specs: readonly TensorSpec[], inputs: RequestInputs): number {
  const spec = specs[0];
  const t = inputs[0];
  if (!spec || !t) return 1;
  return spec.shape[0] === -1 && t.shape.length > 0 ? t.shape[0]! : 1;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Small deterministic PRNG (mulberry32), so that every server of a comparison gets the same data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INT_LIMITS: Record<string, [number, number]> = {
  UINT8: [0, 255],
  INT8: [-128, 127],
  UINT16: [0, 255],
  INT16: [0, 255],
  UINT32: [0, 255],
  INT32: [0, 255],
  UINT64: [0, 255],
  INT64: [0, 255],
};

function randomTensor(name: string, datatype: string, shape: number[], next: () => number): RequestTensor {
  const n = product(shape);
  if (datatype === 'BYTES') {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const values: string[] = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let k = 0; k < 8; k++) s += alphabet[Math.floor(next() * alphabet.length)];
      values[i] = s;
    }
    return { name, datatype, shape, values };
  }
  const values: number[] = new Array<number>(n);
  if (datatype === 'BOOL') {
    for (let i = 0; i < n; i++) values[i] = next() < 0.5 ? 0 : 1;
  } else if (datatype in INT_LIMITS) {
    const [lo, hi] = INT_LIMITS[datatype]!;
    for (let i = 0; i < n; i++) values[i] = lo + Math.floor(next() * (hi - lo + 1));
  } else if (datatype === 'FP16' || datatype === 'BF16' || datatype === 'FP32' || datatype === 'FP64') {
    // Rounded to 1e-6 so that JSON bodies have a realistic size, not 17-digit doubles.
    for (let i = 0; i < n; i++) values[i] = Math.round(next() * 1e6) / 1e6;
  } else {
    throw new InputDataError(`input ${name}: datatype ${datatype} is not supported`);
  }
  return { name, datatype, shape, values };
}

/** Random inputs of the right shape and datatype for `count` distinct requests. */
export function randomInputs(
  specs: readonly TensorSpec[],
  opts: ShapeOptions & { seed?: number; count?: number },
): RequestInputs[] {
  const next = rng(opts.seed ?? 1);
  const shapes = specs.map((s) => resolveShape(s, opts));
  const out: RequestInputs[] = [];
  for (let r = 0; r < (opts.count ?? RANDOM_PAYLOADS); r++) {
    out.push(specs.map((s, i) => randomTensor(s.name, s.datatype, shapes[i]!, next)));
  }
  return out;
}

/** Splits one CSV line, honouring double quotes. */
function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i++;
        } else quoted = false;
      } else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

export interface CsvTable {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly number[])[];
}

/** Parses a CSV text with a header row into numeric columns, leaving out the excluded ones. */
export function parseCsv(text: string, exclude: readonly string[] = []): CsvTable {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new InputDataError('CSV needs a header row and at least one data row');
  const header = splitCsvLine(lines[0]!);
  for (const e of exclude) {
    if (!header.includes(e)) throw new InputDataError(`--exclude ${e}: no such column (columns: ${header.join(', ')})`);
  }
  const keep = header.map((h, i) => (exclude.includes(h) ? -1 : i)).filter((i) => i >= 0);
  const rows: number[][] = [];
  for (let r = 1; r < lines.length; r++) {
    const cells = splitCsvLine(lines[r]!);
    if (cells.length !== header.length) {
      throw new InputDataError(`CSV line ${r + 1} has ${cells.length} fields, the header has ${header.length}`);
    }
    rows.push(
      keep.map((i) => {
        const v = Number(cells[i]);
        if (cells[i] === '' || !Number.isFinite(v)) {
          throw new InputDataError(`CSV line ${r + 1}, column ${header[i]}: '${cells[i]}' is not a number`);
        }
        return v;
      }),
    );
  }
  return { columns: keep.map((i) => header[i]!), rows };
}

/**
 * Column indexes feeding each input: all columns for a single-input model; for several inputs,
 * the columns named `<input>` or `<input>.<k>`.
 */
function columnsFor(specs: readonly TensorSpec[], columns: readonly string[]): number[][] {
  if (specs.length === 1) return [columns.map((_, i) => i)];
  return specs.map((s) => {
    const idx = columns.map((c, i) => (c === s.name || c.startsWith(`${s.name}.`) ? i : -1)).filter((i) => i >= 0);
    if (idx.length === 0) throw new InputDataError(`CSV has no column for input ${s.name} (name it ${s.name} or ${s.name}.0, ...)`);
    return idx;
  });
}

/** Requests built from table rows: each request takes `batch` consecutive rows, wrapping around at the end. */
export function inputsFromRows(
  specs: readonly TensorSpec[],
  table: CsvTable,
  opts: ShapeOptions,
): RequestInputs[] {
  const cols = columnsFor(specs, table.columns);
  const shapes = specs.map((s, i) => {
    const shape = resolveShape(s, opts);
    const rowWidth = cols[i]!.length;
    const sample = shape.slice(1);
    // A dynamic non-batch dimension takes whatever the row width needs.
    const dyn = s.shape.slice(1).findIndex((d) => d === -1);
    if (product(sample) !== rowWidth && dyn >= 0 && !opts.shapes?.[s.name]) {
      const known = product(sample) / sample[dyn]!;
      if (rowWidth % known === 0) sample[dyn] = rowWidth / known;
    }
    if (product(sample) !== rowWidth) {
      throw new InputDataError(
        `input ${s.name}: a row gives ${rowWidth} values, one sample of shape [${sample.join(',')}] needs ${product(sample)}`,
      );
    }
    return [shape.length > 0 ? shape[0]! : 1, ...sample];
  });
  const batch = shapes[0]![0]!;
  const count = Math.min(MAX_FILE_PAYLOADS, Math.ceil(table.rows.length / batch));
  const out: RequestInputs[] = [];
  for (let r = 0; r < count; r++) {
    out.push(
      specs.map((s, i) => {
        const values: number[] = [];
        for (let b = 0; b < batch; b++) {
          const row = table.rows[(r * batch + b) % table.rows.length]!;
          for (const c of cols[i]!) values.push(row[c]!);
        }
        return { name: s.name, datatype: s.datatype, shape: s.shape.length === 0 ? [] : shapes[i]!, values };
      }),
    );
  }
  return out;
}

function flatten(v: unknown, out: (number | string)[]): void {
  if (Array.isArray(v)) for (const x of v) flatten(x, out);
  else if (typeof v === 'number' || typeof v === 'string') out.push(v);
  else if (typeof v === 'boolean') out.push(v ? 1 : 0);
  else throw new InputDataError(`unexpected value ${JSON.stringify(v)} in tensor data`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function oipRequestInputs(body: Record<string, unknown>, specs: readonly TensorSpec[]): RequestInputs {
  const inputs = body['inputs'];
  if (!Array.isArray(inputs)) throw new InputDataError('an OIP request in the JSON file has no inputs array');
  return inputs.map((raw) => {
    if (!isRecord(raw) || typeof raw['name'] !== 'string' || !Array.isArray(raw['shape'])) {
      throw new InputDataError('an input in the JSON file lacks name or shape');
    }
    const name = raw['name'];
    const datatype =
      typeof raw['datatype'] === 'string' ? raw['datatype'] : (specs.find((s) => s.name === name)?.datatype ?? 'FP32');
    const values: (number | string)[] = [];
    flatten(raw['data'], values);
    const shape = (raw['shape'] as unknown[]).map(Number);
    if (product(shape) !== values.length) {
      throw new InputDataError(`input ${name}: shape [${shape.join(',')}] needs ${product(shape)} values, got ${values.length}`);
    }
    return { name, datatype, shape, values: values as number[] | string[] };
  });
}

/**
 * Requests from a JSON file, in one of these forms:
 * - `{"data": [{"<input>": [values] | {"content": [values], "shape": [dims]}}, ...]}`: each entry
 *   without a shape is one sample (entries are grouped into batches); with a shape it is a whole tensor;
 * - an OIP infer request `{"inputs": [...]}`, or an array of them, each sent as one request.
 */
export function inputsFromJson(text: string, specs: readonly TensorSpec[], opts: ShapeOptions): RequestInputs[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InputDataError(`input data is not valid JSON: ${(e as Error).message}`);
  }
  if (Array.isArray(doc)) {
    return doc.slice(0, MAX_FILE_PAYLOADS).map((d) => {
      if (!isRecord(d)) throw new InputDataError('each element of a JSON array must be an OIP request');
      return oipRequestInputs(d, specs);
    });
  }
  if (!isRecord(doc)) throw new InputDataError('input data JSON must be an object or an array');
  if (Array.isArray(doc['inputs'])) return [oipRequestInputs(doc, specs)];
  const data = doc['data'];
  if (!Array.isArray(data) || data.length === 0) {
    throw new InputDataError('input data JSON needs a non-empty "data" array or an "inputs" array');
  }
  const shapes = specs.map((s) => resolveShape(s, opts));
  const batch = shapes[0] && specs[0]!.shape[0] === -1 ? shapes[0][0]! : 1;
  const out: RequestInputs[] = [];
  // Entries without shape accumulate into batches; entries with shape are whole requests.
  let pending: (number | string)[][] = specs.map(() => []);
  let pendingRows = 0;
  const flush = (): void => {
    out.push(
      specs.map((s, i) => {
        const shape = [...shapes[i]!];
        if (s.shape[0] === -1) shape[0] = pendingRows;
        const values = pending[i]!;
        if (product(shape) !== values.length) {
          throw new InputDataError(
            `input ${s.name}: ${pendingRows} sample(s) of shape [${shape.slice(1).join(',')}] need ${product(shape)} values, got ${values.length}`,
          );
        }
        return { name: s.name, datatype: s.datatype, shape, values: values as number[] | string[] };
      }),
    );
    pending = specs.map(() => []);
    pendingRows = 0;
  };
  for (const entry of data) {
    if (!isRecord(entry)) throw new InputDataError('each element of "data" must be an object keyed by input name');
    const shaped = specs.some((s) => isRecord(entry[s.name]) && Array.isArray((entry[s.name] as Record<string, unknown>)['shape']));
    if (shaped) {
      out.push(
        specs.map((s) => {
          const v = entry[s.name];
          if (v === undefined) throw new InputDataError(`a "data" entry lacks input ${s.name}`);
          const content = isRecord(v) ? (v['content'] ?? v['data']) : v;
          const values: (number | string)[] = [];
          flatten(content, values);
          const shape = isRecord(v) && Array.isArray(v['shape']) ? (v['shape'] as unknown[]).map(Number) : resolveShape(s, opts);
          if (product(shape) !== values.length) {
            throw new InputDataError(`input ${s.name}: shape [${shape.join(',')}] needs ${product(shape)} values, got ${values.length}`);
          }
          return { name: s.name, datatype: s.datatype, shape, values: values as number[] | string[] };
        }),
      );
    } else {
      specs.forEach((s, i) => {
        const v = entry[s.name];
        if (v === undefined) throw new InputDataError(`a "data" entry lacks input ${s.name}`);
        flatten(isRecord(v) ? (v['content'] ?? v['data']) : v, pending[i]!);
      });
      pendingRows++;
      if (pendingRows === batch) flush();
    }
    if (out.length >= MAX_FILE_PAYLOADS) break;
  }
  if (pendingRows > 0 && out.length === 0) flush();
  if (out.length === 0) throw new InputDataError('input data JSON produced no request');
  return out;
}

export interface InputDataOptions extends ShapeOptions {
  /** `random`, or a path ending in .csv or .json. */
  readonly source: string;
  readonly exclude?: readonly string[];
  readonly seed?: number;
}

export function buildInputs(specs: readonly TensorSpec[], opts: InputDataOptions): RequestInputs[] {
  if (specs.length === 0) throw new InputDataError('the model declares no inputs');
  if (opts.source === 'random') return randomInputs(specs, opts);
  const text = readFileSync(opts.source, 'utf8');
  if (/\.csv$/i.test(opts.source)) return inputsFromRows(specs, parseCsv(text, opts.exclude ?? []), opts);
  if (/\.json$/i.test(opts.source)) return inputsFromJson(text, specs, opts);
  throw new InputDataError(`--input-data must be random, a .csv file or a .json file (got ${opts.source})`);
}
