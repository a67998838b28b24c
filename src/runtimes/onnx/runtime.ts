/**
 * ONNX models through onnxruntime-node. Tensors are handed to onnxruntime without copies: the
 * typed arrays inside our Tensor type are the ones onnxruntime expects for each element type.
 */
import * as ort from 'onnxruntime-node';
import type { Datatype, TensorData } from '../../core/datatypes.js';
import { InvalidInputError, RuntimeError } from '../../core/errors.js';
import type { Tensor, TensorMetadata } from '../../core/types.js';
import type { ModelRuntime, RunTimings, RuntimeSpec } from '../types.js';

const TO_ORT: Partial<Record<Datatype, ort.Tensor.Type>> = {
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

const FROM_ORT: Record<string, Datatype> = {
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
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function metadataOf(list: readonly ort.InferenceSession.ValueMetadata[]): TensorMetadata[] {
  return list.map((m) => {
    if (!m.isTensor) throw new RuntimeError(`'${m.name}' is not a tensor; only tensor inputs and outputs are supported`);
    const datatype = FROM_ORT[m.type];
    if (datatype === undefined) throw new RuntimeError(`'${m.name}' has element type ${m.type}, which inferd does not support`);
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

export async function loadOnnxRuntime(spec: RuntimeSpec): Promise<ModelRuntime> {
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: spec.onnx.intraOpThreads,
    interOpNumThreads: spec.onnx.interOpThreads,
    graphOptimizationLevel: spec.onnx.graphOptimizationLevel,
    executionProviders: spec.onnx.executionProviders,
    enableCpuMemArena: spec.onnx.enableCpuMemArena,
    enableMemPattern: spec.onnx.enableMemPattern,
  };
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(spec.path, options);
  } catch (error) {
    throw new RuntimeError(`onnxruntime could not load ${spec.path}: ${(error as Error).message}`, error);
  }
  const inputs = metadataOf(session.inputMetadata);
  const outputs = metadataOf(session.outputMetadata);
  const allOutputNames = outputs.map((o) => o.name);

  return {
    inputs,
    outputs,
    async run(tensors, outputNames) {
      const t0 = performance.now();
      const feeds: Record<string, ort.Tensor> = {};
      for (const t of tensors) {
        const type = TO_ORT[t.datatype];
        if (type === undefined) throw new InvalidInputError(`input '${t.name}': datatype ${t.datatype} is not supported by the ONNX runtime`);
        const data = type === 'string' ? (t.data as Uint8Array[]).map((b) => decoder.decode(b)) : t.data;
        feeds[t.name] = new ort.Tensor(type, data as ort.Tensor.DataType, t.shape);
      }
      const names = outputNames.length > 0 ? outputNames : allOutputNames;
      const t1 = performance.now();
      let results: ort.InferenceSession.ReturnType;
      try {
        results = await session.run(feeds, names as string[]);
      } catch (error) {
        throw new RuntimeError(`onnxruntime failed to run the model: ${(error as Error).message}`, error);
      }
      const t2 = performance.now();
      const out: Tensor[] = [];
      for (const name of names) {
        const r = results[name]!;
        const datatype = FROM_ORT[r.type]!;
        const data: TensorData = datatype === 'BYTES' ? (r.data as string[]).map((s) => encoder.encode(s)) : (r.data as TensorData);
        out.push({ name, datatype, shape: r.dims.slice() as number[], data });
      }
      const t3 = performance.now();
      const timings: RunTimings = { inputNs: (t1 - t0) * 1e6, inferNs: (t2 - t1) * 1e6, outputNs: (t3 - t2) * 1e6 };
      return { outputs: out, timings };
    },
    async close() {
      await session.release();
    },
  };
}
