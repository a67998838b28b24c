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

function nest(values: unknown[], dims: number[]): unknown {
  if (dims.length === 0) return values[0];
  if (dims.length === 1) return values;
  const size = dims.slice(1).reduce((a, b) => a * b, 1);
  const out: unknown[] = [];
  for (let i = 0; i < dims[0]!; i++) out.push(nest(values.slice(i * size, (i + 1) * size), dims.slice(1)));
  return out;
}

/** One prediction per row: the output's row, or an object of every output's row. */
export function encodeV1Predictions(outputs: Tensor[]): string {
  const rows = outputs[0]?.shape[0] ?? 0;
  const perOutput = outputs.map((t) => {
    const values = toValues(t.datatype, t.data);
    const inner = t.shape.slice(1);
    const size = inner.reduce((a, b) => a * b, 1);
    return { name: t.name, rows: Array.from({ length: rows }, (_, r) => nest(values.slice(r * size, (r + 1) * size), inner)) };
  });
  const predictions = perOutput.length === 1 ? perOutput[0]!.rows : Array.from({ length: rows }, (_, r) => Object.fromEntries(perOutput.map((o) => [o.name, o.rows[r]])));
  return JSON.stringify({ predictions }, (_key, value: unknown) => (typeof value === 'bigint' ? Number(value) : value));
}
