/**
 * Custom models written in JavaScript: a module that exports `predict` (and optionally `load`,
 * `unload` and a `signature`). Used for pre/post-processing or models that are not ONNX. The
 * module runs inside a worker thread, like every runtime, so a slow predict never stalls the
 * server's event loop.
 *
 *   export async function load({ parameters, modelDir }) { ... }      // optional
 *   export async function predict(inputs, { outputs }) { return [...] } // Tensor[] or { name: tensor }
 *   export const signature = { inputs: [...], outputs: [...] }        // optional if config declares it
 */
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDatatype, type TensorData } from '../../core/datatypes.js';
import { InvalidInputError, RuntimeError } from '../../core/errors.js';
import { checkElementCount, fromValues } from '../../core/tensor.js';
import type { Tensor, TensorMetadata } from '../../core/types.js';
import type { ModelRuntime, RuntimeSpec } from '../types.js';

interface JsModelModule {
  load?: (context: { parameters: Record<string, unknown>; modelDir: string; model: string; version: string }) => unknown;
  predict: (inputs: Record<string, Tensor>, context: { outputs: readonly string[]; requestIds: readonly string[]; log?: import('pino').Logger }) => unknown;
  unload?: () => unknown;
  signature?: { inputs?: TensorMetadata[]; outputs?: TensorMetadata[] };
}

type PlainTensor = { datatype: string; shape: number[]; data: TensorData | ArrayLike<unknown> };

function normaliseOutput(name: string, value: unknown): Tensor {
  const t = value as Partial<PlainTensor> | undefined;
  if (!t || !isDatatype(t.datatype) || !Array.isArray(t.shape) || t.data === undefined) {
    throw new RuntimeError(`the model's predict() returned output '${name}' without a valid datatype, shape and data`);
  }
  let data = t.data;
  if (Array.isArray(data) && !(t.datatype === 'BYTES' && data.every((d) => d instanceof Uint8Array))) {
    data = fromValues(t.datatype, data, `output '${name}'`);
  }
  const tensor: Tensor = { name, datatype: t.datatype, shape: t.shape, data: data as TensorData };
  checkElementCount(tensor, `output '${name}'`);
  return tensor;
}

export async function loadJsRuntime(spec: RuntimeSpec): Promise<ModelRuntime> {
  let mod: JsModelModule;
  try {
    mod = (await import(pathToFileURL(spec.path).href)) as JsModelModule;
  } catch (error) {
    throw new RuntimeError(`could not import the model module ${spec.path}: ${(error as Error).message}`, error);
  }
  if (typeof mod.predict !== 'function') throw new RuntimeError(`the model module ${spec.path} does not export a predict() function`);
  const inputs = spec.inputs ?? mod.signature?.inputs;
  const outputs = spec.outputs ?? mod.signature?.outputs;
  if (!inputs || !outputs) {
    throw new RuntimeError(`the js model '${spec.model}' must declare its inputs and outputs in config.yaml or export a 'signature'`);
  }
  if (mod.load) await mod.load({ parameters: spec.parameters, modelDir: dirname(spec.path), model: spec.model, version: spec.version });

  return {
    inputs,
    outputs,
    async run(tensors, outputNames, context) {
      const t0 = performance.now();
      const byName: Record<string, Tensor> = {};
      for (const t of tensors) byName[t.name] = t;
      const t1 = performance.now();
      let result: unknown;
      try {
        result = await mod.predict(byName, { outputs: outputNames, requestIds: context?.requestIds ?? [], ...(context ? { log: context.log } : {}) });
      } catch (error) {
        // A model signals that the input is at fault by throwing an error whose code is INVALID_ARGUMENT.
        if ((error as { code?: unknown }).code === 'INVALID_ARGUMENT') throw new InvalidInputError(`the model refused this input: ${(error as Error).message}`);
        throw new RuntimeError(`the model's predict() failed: ${(error as Error).message}`, error);
      }
      const t2 = performance.now();
      const list: Tensor[] = [];
      if (Array.isArray(result)) {
        for (const item of result) list.push(normaliseOutput((item as Tensor).name, item));
      } else if (result && typeof result === 'object') {
        for (const [name, value] of Object.entries(result)) list.push(normaliseOutput(name, value));
      } else {
        throw new RuntimeError(`the model's predict() must return a list of tensors or an object of named tensors`);
      }
      const wanted = outputNames.length > 0 ? list.filter((t) => outputNames.includes(t.name)) : list;
      const t3 = performance.now();
      return { outputs: wanted, timings: { inputNs: (t1 - t0) * 1e6, inferNs: (t2 - t1) * 1e6, outputNs: (t3 - t2) * 1e6 } };
    },
    async close() {
      if (mod.unload) await mod.unload();
    },
  };
}
