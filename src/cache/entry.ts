/**
 * A cached answer: the model's output tensors and the parameters it echoed, as one buffer
 * (a length-prefixed JSON header, then each tensor's raw bytes), the form both tiers store.
 */
import { fromRawBytes, toRawBytes } from '../codecs/raw.js';
import type { Datatype } from '../core/datatypes.js';
import type { InferenceResponse, Parameters, Tensor } from '../core/types.js';

export interface CachedAnswer {
  outputs: Tensor[];
  parameters?: Parameters;
}

interface Header {
  o: Array<{ n: string; d: Datatype; s: number[]; b: number }>;
  p?: Record<string, string | number | boolean>;
}

export function encodeAnswer(response: InferenceResponse): Buffer {
  const parts: Buffer[] = [];
  const header: Header = { o: [] };
  for (const t of response.outputs) {
    const bytes = toRawBytes(t.datatype, t.data);
    header.o.push({ n: t.name, d: t.datatype, s: t.shape, b: bytes.byteLength });
    parts.push(bytes);
  }
  if (response.parameters) {
    const p: Record<string, string | number | boolean> = {};
    // bigint parameters (gRPC int64) are kept as numbers; they are echoes of the request.
    for (const [k, v] of Object.entries(response.parameters)) p[k] = typeof v === 'bigint' ? Number(v) : v;
    header.p = p;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32LE(json.byteLength);
  return Buffer.concat([length, json, ...parts]);
}

export function decodeAnswer(buffer: Uint8Array): CachedAnswer {
  const b = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const length = b.readUInt32LE(0);
  const header = JSON.parse(b.subarray(4, 4 + length).toString('utf8')) as Header;
  let offset = 4 + length;
  const outputs: Tensor[] = header.o.map((o) => {
    // A copy: tensors handed to callers must not alias the stored buffer.
    const bytes = new Uint8Array(b.subarray(offset, offset + o.b));
    offset += o.b;
    return { name: o.n, datatype: o.d, shape: o.s, data: fromRawBytes(o.d, o.s, bytes, `cached output '${o.n}'`, 'cache') };
  });
  return header.p ? { outputs, parameters: header.p } : { outputs };
}
