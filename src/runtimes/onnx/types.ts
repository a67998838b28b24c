/** ONNX element types ↔ Open Inference Protocol datatypes, shared by the runtime and the registry. */
import type * as ort from 'onnxruntime-node';
import type { Datatype } from '../../core/datatypes.js';
import type { TensorMetadata } from '../../core/types.js';

const ONNX_TO_OIP: Readonly<Record<string, Datatype>> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  bfloat16: 'BF16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

/** onnxruntime-node has no bfloat16 tensor type in JavaScript, so BF16 cannot be fed. */
export const OIP_TO_ONNX: Readonly<Partial<Record<Datatype, ort.Tensor.Type>>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

export function onnxTypeToDatatype(type: string): Datatype | undefined {
  return ONNX_TO_OIP[type];
}

/**
 * The OIP view of one ONNX input or output, or a reason it has none (a sequence, a map, an
 * element type without an OIP datatype). Symbolic and unknown dimensions become -1.
 */
export function tensorMetadataOf(meta: ort.InferenceSession.ValueMetadata): TensorMetadata | string {
  if (!meta.isTensor) return `'${meta.name}' is not a tensor (a sequence or map); the Open Inference Protocol cannot carry it`;
  const datatype = onnxTypeToDatatype(meta.type);
  if (datatype === undefined) return `'${meta.name}' has ONNX type '${meta.type}', which has no OIP datatype`;
  const shape = meta.shape.map((dim) => (typeof dim === 'number' && Number.isInteger(dim) && dim >= 0 ? dim : -1));
  return { name: meta.name, datatype, shape };
}
