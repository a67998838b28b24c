/**
 * Deterministic inputs that look like what clients send: an ImageNet-normalised picture for
 * mobilenet_v2 (so the JSON text has the digits a real float32 tensor has, not round numbers)
 * and one row of the Wisconsin breast-cancer features.
 */

/** A small xorshift generator: same sequence on every run. */
function generator(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/**
 * `size` values laid out as [3, H, W] (channels first): 8-bit pixels of a gradient with noise,
 * scaled to 0..1 and normalised per channel with the ImageNet mean and standard deviation.
 */
export function syntheticImage(size: number): Float32Array {
  const plane = Math.floor(size / 3);
  const side = Math.max(1, Math.round(Math.sqrt(plane)));
  const next = generator(224);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const c = Math.min(2, Math.floor(i / plane));
    const p = i % plane;
    const y = Math.floor(p / side);
    const x = p % side;
    const pixel = Math.min(255, Math.max(0, Math.round(((x + y + 64 * c) % 256) * 0.8 + next() * 50)));
    out[i] = (pixel / 255 - MEAN[c]!) / STD[c]!;
  }
  return out;
}

/** The first row of the Wisconsin diagnostic breast-cancer data set (30 features, unscaled). */
export const BREAST_CANCER_ROW = Float32Array.from([
  17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373,
  0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189,
]);

/** mobilenet_v2's serving configuration in the benches that compare it with the model alone. */
export const MOBILENET_CONFIG = `# mobilenet_v2 as the protocol benchmark serves it.
runtime: onnx
max_batch_size: 8
instances: 1
onnx:
  intra_op_threads: 2
  inter_op_threads: 1
inputs:
  - { name: input, datatype: FP32, shape: [-1, 3, 224, 224] }
outputs:
  - { name: logits, datatype: FP32, shape: [-1, 1000] }
# Greedy batching: whatever is queued when the instance frees up runs together, nobody waits.
dynamic_batching:
  max_queue_delay_microseconds: 0
warmup:
  - { batch_size: 1, count: 3, inputs: { input: random } }
  - { batch_size: 4, count: 2, inputs: { input: random } }
`;
