/**
 * Encoding of request inputs for the wire, done once before a run so that sending costs no
 * serialization: OIP JSON, OIP JSON with the binary tensor extension, and raw little-endian
 * tensor bytes for gRPC `raw_input_contents`.
 */
import type { RequestInputs, RequestTensor } from './types.js';
import { toHalfBits } from '../core/datatypes.js';

export interface EncodeOptions {
  /** Ask the server for binary outputs (binary tensor extension). */
  readonly binaryOutput?: boolean;
  /** Request parameters merged into the top-level `parameters` object. */
  readonly parameters?: Readonly<Record<string, unknown>>;
}

function jsonData(t: RequestTensor): unknown[] {
  if (t.datatype === 'BOOL') return (t.values as readonly number[]).map((v) => v !== 0);
  return t.values as unknown[];
}

function requestParameters(opts: EncodeOptions): Record<string, unknown> | undefined {
  const p: Record<string, unknown> = { ...(opts.parameters ?? {}) };
  if (opts.binaryOutput) p['binary_data_output'] = true;
  return Object.keys(p).length > 0 ? p : undefined;
}

/** An OIP infer request body in plain JSON. */
export function encodeJsonRequest(inputs: RequestInputs, opts: EncodeOptions = {}): Buffer {
  const body: Record<string, unknown> = {
    inputs: inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: t.datatype, data: jsonData(t) })),
  };
  const params = requestParameters(opts);
  if (params) body['parameters'] = params;
  return Buffer.from(JSON.stringify(body));
}

/** The tensor's values as little-endian bytes, as the binary extension and gRPC raw contents carry them. */
export function tensorBytes(t: RequestTensor): Buffer {
  const n = t.values.length;
  const nums = t.values as readonly number[];
  switch (t.datatype) {
    case 'BOOL':
    case 'UINT8':
      return Buffer.from(Uint8Array.from(nums, (v) => (t.datatype === 'BOOL' ? (v ? 1 : 0) : v)).buffer);
    case 'INT8':
      return Buffer.from(Int8Array.from(nums).buffer);
    case 'UINT16':
      return Buffer.from(Uint16Array.from(nums).buffer);
    case 'INT16':
      return Buffer.from(Int16Array.from(nums).buffer);
    case 'UINT32':
      return Buffer.from(Uint32Array.from(nums).buffer);
    case 'INT32':
      return Buffer.from(Int32Array.from(nums).buffer);
    case 'UINT64':
      return Buffer.from(BigUint64Array.from(nums, (v) => BigInt(Math.trunc(v))).buffer);
    case 'INT64':
      return Buffer.from(BigInt64Array.from(nums, (v) => BigInt(Math.trunc(v))).buffer);
    case 'FP16':
      return Buffer.from(Uint16Array.from(nums, toHalfBits).buffer);
    case 'BF16': {
      const f = Float32Array.from(nums);
      const u = new Uint32Array(f.buffer);
      // Truncation keeps the top 16 bits; rounding is irrelevant for load data.
      return Buffer.from(Uint16Array.from(u, (v) => v >>> 16).buffer);
    }
    case 'FP32':
      return Buffer.from(Float32Array.from(nums).buffer);
    case 'FP64':
      return Buffer.from(Float64Array.from(nums).buffer);
    case 'BYTES': {
      const parts: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const b = Buffer.from(String(t.values[i]), 'utf8');
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32LE(b.length, 0);
        parts.push(len, b);
      }
      return Buffer.concat(parts);
    }
    default:
      throw new Error(`unsupported datatype ${t.datatype} for input ${t.name}`);
  }
}

export interface BinaryRequest {
  readonly body: Buffer;
  /** Length of the JSON header at the start of the body (`Inference-Header-Content-Length`). */
  readonly headerLength: number;
}

/** An OIP infer request with the binary tensor extension: a JSON header followed by raw tensors. */
export function encodeBinaryRequest(inputs: RequestInputs, opts: EncodeOptions = {}): BinaryRequest {
  const raws = inputs.map(tensorBytes);
  const header: Record<string, unknown> = {
    inputs: inputs.map((t, i) => ({
      name: t.name,
      shape: t.shape,
      datatype: t.datatype,
      parameters: { binary_data_size: raws[i]!.length },
    })),
  };
  const params = requestParameters(opts);
  if (params) header['parameters'] = params;
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...raws]), headerLength: json.length };
}
