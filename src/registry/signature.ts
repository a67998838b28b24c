/**
 * Model signatures: read from an ONNX file with onnxruntime, mapped to Open Inference Protocol
 * datatypes, and validated when a caller edits them.
 */
import * as ort from 'onnxruntime-node';
import { InvalidInputError } from '../core/errors.js';
import { isDatatype } from '../core/datatypes.js';
import { onnxTypeToDatatype, tensorMetadataOf } from '../runtimes/onnx/types.js';
import type { TensorMetadata } from '../core/types.js';
import type { Signature } from './types.js';

export { onnxTypeToDatatype };

function toTensorMetadata(meta: ort.InferenceSession.ValueMetadata, role: 'input' | 'output', file: string): TensorMetadata {
  const result = tensorMetadataOf(meta);
  if (typeof result === 'string') throw new InvalidInputError(`${role} ${result} (in ${file})`);
  return result;
}

/** Loads the model once with onnxruntime to read its inputs and outputs. */
export async function readOnnxSignature(file: string): Promise<Signature> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new InvalidInputError(`${file} is not a loadable ONNX model: ${reason}`);
  }
  try {
    return {
      inputs: session.inputMetadata.map((m) => toTensorMetadata(m, 'input', file)),
      outputs: session.outputMetadata.map((m) => toTensorMetadata(m, 'output', file)),
    };
  } finally {
    await session.release();
  }
}

function validateTensors(value: unknown, role: string): TensorMetadata[] {
  if (!Array.isArray(value)) throw new InvalidInputError(`signature ${role} must be a list`);
  const names = new Set<string>();
  return value.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw new InvalidInputError(`signature ${role}[${i}] must be an object`);
    const { name, datatype, shape } = item as Record<string, unknown>;
    if (typeof name !== 'string' || name.length === 0) throw new InvalidInputError(`signature ${role}[${i}] needs a name`);
    if (names.has(name)) throw new InvalidInputError(`signature ${role} has '${name}' twice`);
    names.add(name);
    if (!isDatatype(datatype)) throw new InvalidInputError(`signature ${role} '${name}' has an unknown datatype '${String(datatype)}'`);
    if (!Array.isArray(shape) || !shape.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= -1)) {
      throw new InvalidInputError(`signature ${role} '${name}' needs a shape of integers (-1 for a dynamic dimension)`);
    }
    return { name, datatype, shape: [...(shape as number[])] };
  });
}

/** Checks a signature that a caller supplies, e.g. to correct a dimension. */
export function validateSignature(value: unknown): Signature {
  if (typeof value !== 'object' || value === null) throw new InvalidInputError('a signature must be an object with inputs and outputs');
  const { inputs, outputs } = value as Record<string, unknown>;
  const signature = { inputs: validateTensors(inputs, 'inputs'), outputs: validateTensors(outputs, 'outputs') };
  if (signature.inputs.length === 0) throw new InvalidInputError('a signature needs at least one input');
  if (signature.outputs.length === 0) throw new InvalidInputError('a signature needs at least one output');
  return signature;
}

export function formatShape(shape: number[]): string {
  return `[${shape.map((d) => (d < 0 ? '-1' : String(d))).join(', ')}]`;
}
