/**
 * A JavaScript model that answers each input with itself and a `<name>_layout` output telling
 * where the input's data lay in the worker (byte offset in its buffer, byte length, the buffer's
 * size): tests of large bodies check with it that a tensor reached the worker without a copy.
 */
export const LAYOUT_MODEL = `export function predict(inputs) {
  const out = [];
  for (const [name, t] of Object.entries(inputs)) {
    out.push(t);
    out.push({ name: name + '_layout', datatype: 'FP64', shape: [3], data: Float64Array.of(t.data.byteOffset, t.data.byteLength, t.data.buffer.byteLength) });
  }
  return out;
}`;

/** Its configuration with one FP32 input `x`. */
export const LAYOUT_ONE_INPUT = `runtime: js
max_batch_size: 0
inputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
outputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
  - { name: x_layout, datatype: FP64, shape: [3] }
warmup: []
`;

/** Its configuration with `x` and an INT64 input `ids`. */
export const LAYOUT_TWO_INPUTS = `runtime: js
max_batch_size: 0
inputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
  - { name: ids, datatype: INT64, shape: [-1] }
outputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
  - { name: x_layout, datatype: FP64, shape: [3] }
  - { name: ids, datatype: INT64, shape: [-1] }
  - { name: ids_layout, datatype: FP64, shape: [3] }
warmup: []
`;
