/**
 * How a shadow's answer is compared with the caller's: agreement for labels (integer or text
 * outputs, or each row's top class with `compare: argmax`), absolute error for values. Used on
 * the main thread and in the shadow version's worker threads, so it depends on nothing else.
 */
import type { TensorData } from '../core/datatypes.js';
import type { Tensor } from '../core/types.js';

export type CompareMode = 'auto' | 'argmax';

/** Running totals of the comparisons. */
export interface ComparisonCounts {
  labels: number;
  agreements: number;
  values: number;
  absErrorSum: number;
  maxAbsError: number;
}

export function emptyComparison(): ComparisonCounts {
  return { labels: 0, agreements: 0, values: 0, absErrorSum: 0, maxAbsError: 0 };
}

function isLabelType(datatype: string): boolean {
  return datatype === 'BYTES' || datatype === 'BOOL' || datatype.startsWith('INT') || datatype.startsWith('UINT');
}

function element(data: TensorData, i: number): number | string {
  const value = (data as ArrayLike<unknown>)[i];
  if (value instanceof Uint8Array) return Buffer.from(value).toString('latin1');
  return typeof value === 'bigint' ? Number(value) : (value as number);
}

/** Each row's top class (a row: the last dimension). */
function argmaxRows(tensor: Tensor): number[] {
  const width = tensor.shape.length === 0 ? 1 : tensor.shape[tensor.shape.length - 1]!;
  const data = tensor.data as ArrayLike<number | bigint>;
  const rows: number[] = [];
  for (let start = 0; start + width <= data.length && width > 0; start += width) {
    let best = 0;
    for (let j = 1; j < width; j++) if (Number(data[start + j]) > Number(data[start + best])) best = j;
    rows.push(best);
  }
  return rows;
}

/** Adds the comparison of every output the two answers share to `into`. */
export function compareOutputs(primary: readonly Tensor[], shadow: readonly Tensor[], mode: CompareMode, into: ComparisonCounts): void {
  for (const p of primary) {
    const s = shadow.find((o) => o.name === p.name);
    if (s === undefined) continue;
    if (mode === 'argmax' && !isLabelType(p.datatype) && !isLabelType(s.datatype)) {
      const a = argmaxRows(p);
      const b = argmaxRows(s);
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        into.labels += 1;
        if (a[i] === b[i]) into.agreements += 1;
      }
      continue;
    }
    const n = Math.min(p.data.length, s.data.length);
    if (isLabelType(p.datatype)) {
      for (let i = 0; i < n; i++) {
        into.labels += 1;
        if (element(p.data, i) === element(s.data, i)) into.agreements += 1;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const error = Math.abs(Number(element(p.data, i)) - Number(element(s.data, i)));
        if (!Number.isFinite(error)) continue;
        into.values += 1;
        into.absErrorSum += error;
        if (error > into.maxAbsError) into.maxAbsError = error;
      }
    }
  }
}

type Sliceable = { length: number; subarray?: (a: number, b: number) => unknown; slice: (a: number, b: number) => unknown };

/** Rows from..to of a tensor whose first dimension is rows (a view, not a copy, for typed arrays). */
export function sliceRows(tensor: Tensor, rows: number, from: number, to: number): Tensor {
  const width = tensor.data.length / rows;
  const data = tensor.data as unknown as Sliceable;
  const part = (data.subarray ?? data.slice).call(data, from * width, to * width) as TensorData;
  return { name: tensor.name, datatype: tensor.datatype, shape: [to - from, ...tensor.shape.slice(1)], data: part };
}

/** Whether every output has one row per input row, so the answer can be split back by rows. */
export function splittable(outputs: readonly Tensor[], rows: number): boolean {
  return outputs.every((o) => o.shape.length >= 1 && o.shape[0] === rows && o.data.length % rows === 0);
}

type Concatenable = { length: number; constructor: unknown };

/** The data of several tensors one after another (typed arrays of one kind, or arrays of byte strings). */
export function concatData(parts: readonly TensorData[]): TensorData | undefined {
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as readonly Uint8Array[][]).flat();
  const Typed = (first as Concatenable).constructor as new (n: number) => { set(a: ArrayLike<unknown>, at: number): void };
  let total = 0;
  for (const p of parts) {
    if ((p as Concatenable).constructor !== Typed) return undefined;
    total += p.length;
  }
  const out = new Typed(total);
  let at = 0;
  for (const p of parts) {
    out.set(p as ArrayLike<unknown>, at);
    at += p.length;
  }
  return out as unknown as TensorData;
}
