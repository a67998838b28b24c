/**
 * The cache key of an inference: model, version, and a SHA-256 of what decides the answer —
 * each input's name, datatype, shape and raw bytes (so the same tensor sent as JSON, binary or
 * gRPC gives one key), the outputs asked for, and the request parameters that reach the model.
 * Inputs and outputs are taken in name order, since their order does not change the answer.
 */
import { createHash } from 'node:crypto';
import { toRawBytes } from '../codecs/raw.js';
import type { InferenceRequest, Parameters } from '../core/types.js';

/** Parameters that shape how a request is handled or encoded, never what the model answers. */
const HANDLING_PARAMETERS = new Set(['priority', 'timeout', 'binary_data_output', 'headers', 'binary_data', 'binary_data_size', 'classification', 'typed_output_contents']);

export const KEY_PREFIX = 'inferd:cache:1';

/** `inferd:cache:1:<model>:<version>:<hash>`; the model is URI-encoded so `:` cannot collide. */
export function cacheKey(model: string, version: string, request: InferenceRequest): string {
  return `${modelPrefix(model, version)}${requestHash(request)}`;
}

export function modelPrefix(model: string, version?: string): string {
  return `${KEY_PREFIX}:${encodeURIComponent(model)}:${version === undefined ? '' : `${encodeURIComponent(version)}:`}`;
}

export function requestHash(request: InferenceRequest): string {
  const h = createHash('sha256');
  const field = (s: string): void => {
    h.update(String(Buffer.byteLength(s)));
    h.update(':');
    h.update(s);
  };
  const inputs = [...request.inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  field(`inputs=${inputs.length}`);
  for (const t of inputs) {
    field(t.name);
    field(t.datatype);
    field(t.shape.join(','));
    const bytes = toRawBytes(t.datatype, t.data);
    field(`bytes=${bytes.byteLength}`);
    h.update(bytes);
  }
  const outputs = (request.outputs ?? []).map((o) => o.name).sort();
  field(`outputs=${outputs.join('\u0000')}`);
  field(`parameters=${canonicalParameters(request.parameters)}`);
  return h.digest('base64url');
}

function canonicalParameters(params: Parameters | undefined): string {
  if (!params) return '';
  const keys = Object.keys(params)
    .filter((k) => !HANDLING_PARAMETERS.has(k))
    .sort();
  return keys.map((k) => `${JSON.stringify(k)}=${typeof params[k]}:${String(params[k])}`).join('\u0000');
}
