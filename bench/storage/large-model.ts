/**
 * Writes a loadable ONNX model of a chosen size: one FP32 initializer `table` of N floats and a
 * Gather that looks rows up by index (input `index` INT64 [-1] → output `value` FP32 [-1]).
 * The protobuf is encoded here field by field (ModelProto → GraphProto → TensorProto.raw_data)
 * and the table is streamed to disk, so a 500 MB model needs no 500 MB buffer.
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const key = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, value: number) => Buffer.concat([key(field, 0), varint(value)]);
const bytes = (field: number, value: Buffer | string) => {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([key(field, 2), varint(b.length), b]);
};
/** Header of a length-delimited field whose body is written separately. */
const header = (field: number, length: number) => Buffer.concat([key(field, 2), varint(length)]);

function valueInfo(name: string, elemType: number): Buffer {
  // TypeProto.tensor_type { elem_type, shape { dim { dim_param: "n" } } }
  const dim = bytes(1, bytes(2, 'n'));
  const tensorType = Buffer.concat([int(1, elemType), bytes(2, dim)]);
  return Buffer.concat([bytes(1, name), bytes(2, bytes(1, tensorType))]);
}

/** Writes the model to `file`; returns its size in bytes. */
export async function writeLargeModel(file: string, floats: number): Promise<number> {
  const FLOAT = 1;
  const INT64 = 7;
  const rawLength = floats * 4;
  const tensorHead = Buffer.concat([int(1, floats), int(2, FLOAT), bytes(8, 'table')]);
  const tensorLength = tensorHead.length + header(9, rawLength).length + rawLength;
  const node = bytes(1, Buffer.concat([bytes(1, 'table'), bytes(1, 'index'), bytes(2, 'value'), bytes(3, 'lookup'), bytes(4, 'Gather')]));
  const graphRest = Buffer.concat([bytes(2, 'large'), bytes(11, valueInfo('index', INT64)), bytes(12, valueInfo('value', FLOAT))]);
  const initializerHeader = header(5, tensorLength);
  const graphLength = node.length + initializerHeader.length + tensorLength + graphRest.length;
  const modelHead = Buffer.concat([int(1, 8), bytes(2, 'inferd-bench'), bytes(8, Buffer.concat([bytes(1, ''), int(2, 17)])), header(7, graphLength)]);

  const out = await open(file, 'w');
  try {
    await out.write(Buffer.concat([modelHead, node, initializerHeader, tensorHead, header(9, rawLength)]));
    const chunk = 16 * 1024 * 1024;
    for (let done = 0; done < rawLength; done += chunk) {
      const n = Math.min(chunk, rawLength - done);
      // Random bytes, with every float's exponent kept finite (no NaN or Inf rows).
      const b = randomBytes(n);
      for (let i = 3; i < n; i += 4) b[i] = b[i]! & 0x3f;
      await out.write(b);
    }
    await out.write(graphRest);
  } finally {
    await out.close();
  }
  return modelHead.length + node.length + initializerHeader.length + tensorLength + graphRest.length;
}
