/**
 * What both remote clients (HTTP and gRPC) do with the remote's answers: read its model
 * metadata into a signature, and hand the caller the outputs it asked for in the declared shape.
 */
import { RuntimeError } from '../../core/errors.js';
import { isDatatype } from '../../core/datatypes.js';
import type { Tensor, TensorMetadata } from '../../core/types.js';

/** The remote's `inputs` or `outputs` metadata; dims may come as numbers or (gRPC int64) strings. */
export function readSignature(list: unknown, field: 'inputs' | 'outputs', where: string): TensorMetadata[] {
  if (!Array.isArray(list)) throw new RuntimeError(`${where}: the remote's metadata has no '${field}'`);
  return list.map((t: unknown, i) => {
    const m = t as { name?: unknown; datatype?: unknown; shape?: unknown };
    const dims = Array.isArray(m.shape) ? m.shape : undefined;
    const shape = dims?.map((d) => (typeof d === 'number' || typeof d === 'string' ? Number(d) : Number.NaN)) ?? [];
    if (typeof m.name !== 'string' || !isDatatype(m.datatype) || !dims || !shape.every((d) => Number.isInteger(d))) {
      throw new RuntimeError(`${where}: the remote's ${field}[${i}] is not a tensor description`);
    }
    return { name: m.name, datatype: m.datatype, shape };
  });
}

/**
 * The requested outputs, in the requested order: a remote may answer more than asked (MLServer
 * sends every output), and its answer is sliced per request by position. An output that has one
 * trailing dimension of 1 more than its metadata declares (MLServer's numpy codec turns [n]
 * into [n, 1]) takes the declared shape; the data is the same.
 */
export function conformOutputs(model: string, answered: Tensor[], requested: string[], declared: TensorMetadata[]): Tensor[] {
  return requested.map((name) => {
    const tensor = answered.find((t) => t.name === name);
    if (!tensor) throw new RuntimeError(`remote model '${model}' answered without the output '${name}' (it sent ${answered.map((t) => t.name).join(', ') || 'none'})`);
    const shape = declared.find((m) => m.name === name)?.shape;
    return shape && hasExtraUnitDim(tensor.shape, shape) ? { ...tensor, shape: tensor.shape.slice(0, -1) } : tensor;
  });
}

function hasExtraUnitDim(actual: number[], declared: number[]): boolean {
  if (actual.length !== declared.length + 1 || actual[actual.length - 1] !== 1) return false;
  return declared.every((d, i) => d === -1 || d === actual[i]);
}
