import { loadJsRuntime } from './js/runtime.js';
import { loadOnnxRuntime } from './onnx/runtime.js';
import type { ModelRuntime, RuntimeSpec } from './types.js';

export type { ModelRuntime, RuntimeSpec, RunTimings, WarmupSpec, OnnxSessionOptions, RuntimeKind } from './types.js';

/** Loads the runtime a spec names. Called inside worker threads only. */
export function loadRuntime(spec: RuntimeSpec): Promise<ModelRuntime> {
  switch (spec.kind) {
    case 'onnx':
      return loadOnnxRuntime(spec);
    case 'js':
      return loadJsRuntime(spec);
  }
}
