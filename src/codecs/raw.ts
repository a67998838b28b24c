/**
 * The raw tensor encoding shared by the gRPC door (`raw_input_contents`/`raw_output_contents`)
 * and the HTTP binary tensor extension: little-endian, row-major, no padding; BOOL one byte per
 * element; BYTES a 4-byte little-endian length before each element.
 *
 * Numeric tensors are views, never copies, in both directions (a copy happens only when bytes
 * arrive unaligned for their element size). The server assumes a little-endian host, as are all
 * platforms onnxruntime-node ships for.
 */
import { byteSizeOf, fromBytes, type Datatype, type TensorData } from '../core/datatypes.js';
import { InvalidInputError } from '../core/errors.js';
import { elementCount } from '../core/tensor.js';

/** Bytes a tensor occupies in the raw encoding. */
export function rawByteLength(datatype: Datatype, data: TensorData): number {
  if (datatype !== 'BYTES') return (data as ArrayBufferView).byteLength;
  let total = 0;
  for (const element of data as Uint8Array[]) total += 4 + element.byteLength;
  return total;
}

/** The raw encoding of a tensor's data: a view of it for numeric tensors, a new buffer for BYTES. */
export function toRawBytes(datatype: Datatype, data: TensorData): Buffer {
  if (datatype !== 'BYTES') {
    const view = data as ArrayBufferView;
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  }
  const elements = data as Uint8Array[];
  const out = Buffer.allocUnsafe(rawByteLength(datatype, data));
  let offset = 0;
  for (const element of elements) {
    out.writeUInt32LE(element.byteLength, offset);
    out.set(element, offset + 4);
    offset += 4 + element.byteLength;
  }
  return out;
}

/**
 * Decodes the raw bytes of one tensor, checking they hold exactly what `shape` and `datatype`
 * call for. `what` names the tensor and `source` the field, for error messages.
 */
export function fromRawBytes(datatype: Datatype, shape: readonly number[], bytes: Uint8Array, what: string, source: string): TensorData {
  const count = elementCount(shape);
  if (datatype === 'BYTES') return splitBytesElements(bytes, count, what, source);
  const expected = count * byteSizeOf(datatype);
  if (bytes.byteLength !== expected) {
    throw new InvalidInputError(
      `${what}: ${source} holds ${bytes.byteLength} bytes but shape [${shape.join(', ')}] of ${datatype} needs ${expected}`,
    );
  }
  const data = fromBytes(datatype, bytes);
  if (datatype === 'BOOL') {
    const flags = data as Uint8Array;
    for (let i = 0; i < flags.length; i++) {
      if (flags[i]! > 1) throw new InvalidInputError(`${what}: BOOL element ${i} in ${source} is ${flags[i]}, expected 0 or 1`);
    }
  }
  return data;
}

/** Splits length-prefixed BYTES elements; each element is a view into `bytes`. */
function splitBytesElements(bytes: Uint8Array, count: number, what: string, source: string): Uint8Array[] {
  // Every element takes at least its 4-byte length: reject absurd shapes before allocating for them.
  if (count * 4 > bytes.byteLength) {
    throw new InvalidInputError(
      `${what}: ${source} holds ${bytes.byteLength} bytes, too few for the ${count} BYTES elements the shape calls for`,
    );
  }
  const out = new Array<Uint8Array>(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.byteLength) {
      throw new InvalidInputError(`${what}: ${source} ends after ${i} BYTES elements but the shape needs ${count}`);
    }
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) {
      throw new InvalidInputError(
        `${what}: BYTES element ${i} in ${source} declares ${length} bytes but only ${bytes.byteLength - offset} remain`,
      );
    }
    out[i] = bytes.subarray(offset, offset + length);
    offset += length;
  }
  if (offset !== bytes.byteLength) {
    throw new InvalidInputError(
      `${what}: ${source} holds ${bytes.byteLength - offset} bytes after the ${count} BYTES elements the shape calls for`,
    );
  }
  return out;
}
