/**
 * KServe V1 / TF-Serving: `{"instances": [...]}` → `{"predictions": [...]}`. Instances carry
 * values only; names, datatypes and per-row shapes come from the served model's inputs, so
 * decoding runs once the version is resolved (see pipeline/policies/resolve.ts).
 */
import { InvalidInputError } from '../core/errors.js';
import { toValues } from '../core/tensor.js';
import type { InferenceRequest, Tensor, TensorMetadata } from '../core/types.js';
import { decodeTensor } from './json.js';

/** Checks the body's shape; the instances are decoded later, against the model's inputs. */
export function parseV1Body(body: unknown): unknown[] {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { instances?: unknown }).instances)) {
    throw new InvalidInputError('the request body must be {"instances": [...]}');
  }
  const instances = (body as { instances: unknown[] }).instances;
  if (instances.length === 0) throw new InvalidInputError("'instances' is empty: nothing to predict");
  return instances;
}

export function decodeV1Instances(instances: unknown[], inputs: readonly TensorMetadata[]): InferenceRequest {
  const named = instances.every((i) => typeof i === 'object' && i !== null && !Array.isArray(i));
  if (!named && inputs.length !== 1) {
    throw new InvalidInputError(`this model takes ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}): each instance must be an object naming them`);
  }
  const tensors = inputs.map((meta, position) => {
    const rows = named ? instances.map((i) => (i as Record<string, unknown>)[meta.name]) : instances;
    if (rows.some((r) => r === undefined)) throw new InvalidInputError(`an instance is missing input '${meta.name}'`);
    const rowShape = meta.shape.slice(1).map((d, axis) => (d >= 0 ? d : inferDim(rows[0], axis)));
    return decodeTensor({ name: meta.name, datatype: meta.datatype, shape: [rows.length, ...rowShape], data: rows }, position);
  });
  return { inputs: tensors };
}

function inferDim(row: unknown, axis: number): number {
  let v: unknown = row;
  for (let i = 0; i < axis; i++) v = Array.isArray(v) ? v[0] : undefined;
  if (!Array.isArray(v)) throw new InvalidInputError('instances do not have the shape the model expects');
  return v.length;
}

/** The JSON text of each element: INT64/UINT64 as exact integers, NaN and Infinity as strings. */
function elementTexts(t: Tensor): string[] {
  return toValues(t.datatype, t.data).map((v) => {
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number' && !Number.isFinite(v)) return `"${v}"`;
    return String(v);
  });
}

/** Row-major element texts nested as `dims` say, starting at `offset`. */
function nestText(texts: string[], offset: number, dims: readonly number[]): string {
  if (dims.length === 0) return texts[offset] ?? 'null';
  const inner = dims.slice(1);
  const size = inner.reduce((a, b) => a * b, 1);
  const parts = new Array<string>(dims[0]!);
  for (let i = 0; i < dims[0]!; i++) parts[i] = nestText(texts, offset + i * size, inner);
  return `[${parts.join(',')}]`;
}

/** One prediction per row: the output's row, or an object of every output's row. */
export function encodeV1Predictions(outputs: Tensor[]): string {
  const rows = outputs[0]?.shape[0] ?? 0;
  const perOutput = outputs.map((t) => {
    const texts = elementTexts(t);
    const inner = t.shape.slice(1);
    const size = inner.reduce((a, b) => a * b, 1);
    return { key: JSON.stringify(t.name), rows: Array.from({ length: rows }, (_, r) => nestText(texts, r * size, inner)) };
  });
  const predictions =
    perOutput.length === 1
      ? perOutput[0]!.rows
      : Array.from({ length: rows }, (_, r) => `{${perOutput.map((o) => `${o.key}:${o.rows[r]}`).join(',')}}`);
  return `{"predictions":[${predictions.join(',')}]}`;
}
