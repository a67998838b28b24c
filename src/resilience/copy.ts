/**
 * Copies of request tensors. A worker-pool run takes ownership of its inputs' buffers (they are
 * transferred to the worker thread and detached here), so a request that may be sent again — a
 * retry, a fallback, a tensor two ensemble steps read — is sent as a copy, keeping the original.
 */
import type { InferenceRequest, Tensor } from '../core/types.js';

export function copyTensor(t: Tensor): Tensor {
  const data = Array.isArray(t.data) ? [...t.data] : (t.data as Float32Array).slice();
  return { ...t, shape: [...t.shape], data: data as Tensor['data'] };
}

export function copyRequest(request: InferenceRequest): InferenceRequest {
  return { ...request, inputs: request.inputs.map(copyTensor) };
}

/** Whether a version's runs take ownership of their inputs (worker threads, or an ensemble's first steps). */
export function consumesInputs(runtime: string): boolean {
  return runtime !== 'remote';
}
