/**
 * The binary tensor extension as the REST door plugs it in (its BinaryCodec): a body with an
 * Inference-Header-Content-Length is split, binary inputs are decoded from the bytes after the
 * JSON header and JSON inputs by the door's own JSON decoder; responses carry the outputs the
 * request asked for as binary (`binary_data` / `binary_data_output`) after the JSON header.
 */
import { InvalidInputError } from '../core/errors.js';
import type { InferenceRequest, InferenceResponse, Tensor } from '../core/types.js';
import { decodeInferRequest, decodeTensor, parseParameters } from './json.js';
import { attachBinaryInputs, BINARY_DATA_SIZE, binaryOutputSelection, encodeBinaryResponse, parseBinaryRequest } from './binary.js';

/** Splits a body into its JSON header and binary section, and builds binary answers. */
export interface BinaryCodec {
  decode(body: Buffer, headerLength: number): InferenceRequest;
  /** The binary answer, or undefined when the request asked for none (answer in JSON). */
  encode(response: InferenceResponse, request: InferenceRequest): { body: Buffer; headerLength: number } | undefined;
}

export const binaryCodec: BinaryCodec = {
  decode(body, headerLength) {
    const { header, binary } = parseBinaryRequest(body, headerLength);
    const inputs = typeof header === 'object' && header !== null ? (header as { inputs?: unknown }).inputs : undefined;
    const binaryData = attachBinaryInputs(inputs, binary);
    return decodeInferRequest(header, (raw, position) => {
      const data = binaryData[position];
      if (data === undefined) return decodeTensor(raw, position);
      // attachBinaryInputs has checked datatype, shape and size.
      const input = raw as { name?: unknown; datatype: Tensor['datatype']; shape: number[]; parameters?: Record<string, unknown> };
      if (typeof input.name !== 'string' || input.name.length === 0) {
        throw new InvalidInputError(`inputs[${position}]: 'name' must be a non-empty string`);
      }
      const tensor: Tensor = { name: input.name, datatype: input.datatype, shape: input.shape, data };
      // binary_data_size describes the wire, not the tensor: the model never sees it.
      const { [BINARY_DATA_SIZE]: _size, ...rest } = input.parameters ?? {};
      const parameters = parseParameters(rest, `input '${input.name}'`);
      if (parameters !== undefined && Object.keys(parameters).length > 0) tensor.parameters = parameters;
      return tensor;
    });
  },

  encode(response, request) {
    const selection = binaryOutputSelection(request);
    if (selection !== 'all' && selection.size === 0) return undefined;
    return encodeBinaryResponse(response, selection);
  },
};
