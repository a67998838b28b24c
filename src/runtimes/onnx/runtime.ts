/**
 * ONNX models through onnxruntime-node. Tensors are handed to onnxruntime without copies: the
 * typed arrays inside our Tensor type are the ones onnxruntime expects for each element type.
 */
import * as ort from 'onnxruntime-node';
import type { TensorData } from '../../core/datatypes.js';
import { OIP_TO_ONNX, onnxTypeToDatatype, tensorMetadataOf } from './types.js';
import { InvalidInputError, RuntimeError } from '../../core/errors.js';
import type { Tensor, TensorMetadata } from '../../core/types.js';

/** Status messages of onnxruntime's INVALID_ARGUMENT class: the input, not the model, is at fault. */
const INPUT_CAUSED = /indices element out of data bounds|Unexpected input data type|Invalid rank|Got invalid dimensions|out of range|must be within the inclusive range|shape mismatch|Invalid input|cannot reshape|Attempting to broadcast/i;
import type { ModelRuntime, RunTimings, RuntimeSpec } from '../types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function metadataOf(list: readonly ort.InferenceSession.ValueMetadata[]): TensorMetadata[] {
  return list.map((m) => {
    const result = tensorMetadataOf(m);
    if (typeof result === 'string') throw new RuntimeError(`${result}; inferd cannot serve it`);
    return result;
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
    extra: { session: { intra_op: { allow_spinning: spec.onnx.allowSpinning ? '1' : '0' }, inter_op: { allow_spinning: spec.onnx.allowSpinning ? '1' : '0' } } },
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
        const type = OIP_TO_ONNX[t.datatype];
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
        const message = (error as Error).message;
        // onnxruntime reports a bad input (an index out of a table's range, a wrong type or
        // rank) through the same exception as its own failures: tell them apart by the status
        // message, so the caller's mistake is answered 400 and not counted as a server error.
        if (INPUT_CAUSED.test(message)) throw new InvalidInputError(`the model refused this input: ${message}`);
        throw new RuntimeError(`onnxruntime failed to run the model: ${message}`, error);
      }
      const t2 = performance.now();
      const out: Tensor[] = [];
      for (const name of names) {
        const r = results[name]!;
        const datatype = onnxTypeToDatatype(r.type)!;
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
