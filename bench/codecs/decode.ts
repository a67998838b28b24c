/**
 * Cost of decoding a JSON inference request body into tensors, the path every REST request
 * takes: body bytes → text → parsed JSON → typed arrays. Runs in one process, no server.
 *
 *   npx tsx bench/codecs/decode.ts [--repeats 15]
 *
 * Prints, per request, the median of the repeats (each repeat decodes the body enough times to
 * last about 200 ms), and the cost of a bare JSON.parse of the same text as a yardstick for the
 * machine's speed at the moment of the run.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as json from '../../src/codecs/json.js';

const SHARED = resolve(import.meta.dirname, '..', '..', '..', 'shared', 'models');
const repeatsArg = process.argv.indexOf('--repeats');
const REPEATS = repeatsArg > 0 ? Number(process.argv[repeatsArg + 1]) : 15;

// The decoder the REST door uses: the codec's body parser when it has one.
const parseBody: (body: Buffer) => unknown =
  (json as { parseJsonBody?: (body: Buffer) => unknown }).parseJsonBody ?? ((body) => JSON.parse(body.toString('utf8')));

function breastCancerBody(): Buffer {
  const golden = JSON.parse(readFileSync(resolve(SHARED, 'breast_cancer', 'golden.json'), 'utf8')) as {
    inputs: { features: { data: number[] } };
  };
  const row = golden.inputs.features.data.slice(0, 30);
  return Buffer.from(JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: row }] }));
}

function mobilenetImage(): number[] {
  const raw = readFileSync(resolve(SHARED, 'mobilenet_v2', 'golden_input_2x3x224x224.f32'));
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  return Array.from(all.subarray(0, 3 * 224 * 224));
}

function mobilenetBody(image: number[], nested: boolean): Buffer {
  let data: unknown = image;
  if (nested) {
    const planes: number[][][] = [];
    for (let c = 0; c < 3; c++) {
      const rows: number[][] = [];
      for (let y = 0; y < 224; y++) rows.push(image.slice((c * 224 + y) * 224, (c * 224 + y + 1) * 224));
      planes.push(rows);
    }
    data = [planes];
  }
  return Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224], data }] }));
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median time of one call, in microseconds. */
function measure(fn: () => void): number {
  fn();
  let iterations = 1;
  let per: number;
  for (;;) {
    const t = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    const elapsed = performance.now() - t;
    if (elapsed > 50) {
      per = elapsed / iterations;
      break;
    }
    iterations *= 2;
  }
  const target = Math.max(1, Math.round(200 / per));
  const samples: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t = performance.now();
    for (let i = 0; i < target; i++) fn();
    samples.push(((performance.now() - t) / target) * 1000);
  }
  return median(samples);
}

const image = mobilenetImage();
const cases: Array<[string, Buffer]> = [
  ['breast_cancer 1x30 FP32', breastCancerBody()],
  ['mobilenet 1x3x224x224 FP32, flat', mobilenetBody(image, false)],
  ['mobilenet 1x3x224x224 FP32, nested', mobilenetBody(image, true)],
];

console.log(`| request | body bytes | JSON.parse alone (µs) | decode (µs) | decode / JSON.parse |`);
console.log(`|---|---|---|---|---|`);
for (const [name, body] of cases) {
  let sink = 0;
  const bare = measure(() => {
    sink += (JSON.parse(body.toString('utf8')) as { inputs: unknown[] }).inputs.length;
  });
  const decode = measure(() => {
    sink += json.decodeInferRequest(parseBody(body)).inputs.length;
  });
  if (sink === 0) throw new Error('nothing decoded');
  console.log(`| ${name} | ${body.length} | ${bare.toFixed(1)} | ${decode.toFixed(1)} | ${(decode / bare).toFixed(2)} |`);
}
