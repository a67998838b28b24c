/**
 * The columns drift watches on a model's outputs, derived per row from its output tensors the
 * same way when the reference is scored offline and when live responses are captured:
 *   - one value per row (shape [batch] or [batch, 1]): a column named after the tensor (a class
 *     label, a regression value);
 *   - several values per row (class probabilities or scores): `<tensor>.class`, the index of the
 *     largest, and `<tensor>.confidence`, its value.
 * Text (BYTES) outputs are left out.
 */
import { InvalidInputError } from '../core/errors.js';
import type { ModelRuntime } from '../runtimes/types.js';
import type { Tensor, TensorMetadata } from '../core/types.js';
import type { Column } from './dataset.js';

export interface OutputColumns {
  names: string[];
  rows: number;
  /** Row-major: rows × names.length. */
  values: Float64Array;
}

function rowWidth(shape: readonly number[]): number {
  return shape.length <= 1 ? 1 : shape.slice(1).reduce((a, b) => a * b, 1);
}

/** Column names for a model's declared outputs (dynamic widths count as several values). */
export function outputColumnNames(outputs: readonly TensorMetadata[]): string[] {
  const names: string[] = [];
  for (const o of outputs) {
    if (o.datatype === 'BYTES') continue;
    const dims = o.shape.slice(1);
    const single = dims.length === 0 || (dims.length === 1 && dims[0] === 1);
    if (single) names.push(o.name);
    else names.push(`${o.name}.class`, `${o.name}.confidence`);
  }
  return names;
}

/** Per-row output columns of one (batched) response. */
export function outputColumnsOf(tensors: readonly Tensor[]): OutputColumns {
  const usable = tensors.filter((t) => t.datatype !== 'BYTES');
  if (usable.length === 0) return { names: [], rows: 0, values: new Float64Array(0) };
  const rows = usable[0]!.shape.length === 0 ? 1 : usable[0]!.shape[0]!;
  const names: string[] = [];
  const readers: Array<(row: number, out: Float64Array, at: number) => number> = [];
  for (const t of usable) {
    const width = rowWidth(t.shape);
    const data = t.data as ArrayLike<number | bigint>;
    if ((t.shape.length === 0 ? 1 : t.shape[0]!) !== rows) throw new InvalidInputError(`output '${t.name}' has ${t.shape[0]} rows, '${usable[0]!.name}' has ${rows}`);
    if (width === 1) {
      names.push(t.name);
      readers.push((r, out, at) => {
        out[at] = Number(data[r]!);
        return 1;
      });
    } else {
      names.push(`${t.name}.class`, `${t.name}.confidence`);
      readers.push((r, out, at) => {
        let best = 0;
        let max = -Infinity;
        for (let k = 0; k < width; k++) {
          const v = Number(data[r * width + k]!);
          if (v > max) {
            max = v;
            best = k;
          }
        }
        out[at] = best;
        out[at + 1] = max;
        return 2;
      });
    }
  }
  const values = new Float64Array(rows * names.length);
  for (let r = 0; r < rows; r++) {
    let at = r * names.length;
    for (const read of readers) at += read(r, values, at);
  }
  return { names, rows, values };
}

/** Rows per run when scoring a reference table. */
const SCORE_BATCH = 1024;

/**
 * Runs a single-input model over the input columns of a table (in batches) and returns the
 * derived output columns for every row.
 */
export async function scoreColumns(runtime: ModelRuntime, inputs: readonly Column[]): Promise<Column[]> {
  if (runtime.inputs.length !== 1) throw new InvalidInputError(`scoring needs a model with one input; this one has ${runtime.inputs.length}`);
  const input = runtime.inputs[0]!;
  if (input.datatype !== 'FP32' && input.datatype !== 'FP64') throw new InvalidInputError(`scoring supports FP32 and FP64 inputs; '${input.name}' is ${input.datatype}`);
  const width = rowWidth(input.shape);
  if (input.shape.slice(1).every((d) => d >= 0) && width !== inputs.length) {
    throw new InvalidInputError(`input '${input.name}' takes ${width} values per row; the data has ${inputs.length} input columns`);
  }
  for (const c of inputs) if (c.kind !== 'numeric') throw new InvalidInputError(`column '${c.name}' is not numeric; the model's input is`);
  const rows = inputs[0]?.values.length ?? 0;
  const cols = inputs.length;
  let names: string[] | undefined;
  const parts: Float64Array[] = [];
  for (let start = 0; start < rows; start += SCORE_BATCH) {
    const n = Math.min(SCORE_BATCH, rows - start);
    const data = input.datatype === 'FP32' ? new Float32Array(n * cols) : new Float64Array(n * cols);
    for (let r = 0; r < n; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = (inputs[c]!.values as Float64Array)[start + r]!;
    const shape = input.shape.length === 1 ? [n * cols] : [n, ...input.shape.slice(1).map((d) => (d < 0 ? cols : d))];
    const { outputs } = await runtime.run([{ name: input.name, datatype: input.datatype, shape, data }], []);
    const derived = outputColumnsOf(outputs);
    names ??= derived.names;
    parts.push(derived.values);
  }
  const columnNames = names ?? outputColumnNames(runtime.outputs);
  return columnNames.map((name, k) => {
    const values = new Float64Array(rows);
    let r = 0;
    for (const part of parts) for (let i = k; i < part.length; i += columnNames.length) values[r++] = part[i]!;
    return { name, kind: 'numeric' as const, values };
  });
}
