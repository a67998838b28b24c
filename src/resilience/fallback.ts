/**
 * Fallback answers: another model (version) or a static default answer stands in when the
 * primary fails, times out or its circuit is open. Such an answer says so — a `fallback`
 * response parameter and an `X-Inferd-Fallback` header naming the source — and is never cached.
 */
import { fromValues } from '../core/tensor.js';
import type { InferenceResponse, RequestContext, Tensor } from '../core/types.js';
import type { Datatype } from '../core/datatypes.js';

export const FALLBACK_HEADER = 'x-inferd-fallback';
export const FALLBACK_PARAMETER = 'fallback';

const answers = new WeakSet<InferenceResponse>();

export function isFallbackAnswer(response: InferenceResponse): boolean {
  return answers.has(response);
}

/** Marks `response` as a fallback answer from `source` ("static" or "model/version"). */
export function markFallback(ctx: RequestContext, response: InferenceResponse, source: string): InferenceResponse {
  response.parameters = { ...response.parameters, [FALLBACK_PARAMETER]: source };
  ctx.responseHeaders ??= {};
  ctx.responseHeaders[FALLBACK_HEADER] = source;
  answers.add(response);
  return response;
}

export interface StaticTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: Array<number | string | boolean>;
}

/** Decodes a configured default answer once, checking data fits the shape. */
export function staticOutputs(outputs: StaticTensor[], where: string): Tensor[] {
  return outputs.map((o) => {
    const count = o.shape.reduce((a, b) => a * b, 1);
    if (count !== o.data.length) throw new Error(`${where}: fallback output '${o.name}' has ${o.data.length} values but shape [${o.shape.join(', ')}] holds ${count}`);
    return { name: o.name, datatype: o.datatype, shape: o.shape, data: fromValues(o.datatype, o.data, `fallback output '${o.name}'`) };
  });
}
