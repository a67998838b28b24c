/**
 * Cost of decoding a JSON inference request body into tensors, the path every REST request
 * takes: body bytes → text → parsed JSON → typed arrays. Runs in one process, no server.
 *
 *   npx tsx bench/codecs/decode.ts [--repeats 15] [--baseline DIR]
 *
 * Prints, per request, the median and the fastest of 8 × repeats rounds (each decodes the body
 * enough times to last about 25 ms), and the cost of a bare JSON.parse of the same text as a yardstick for the
 * machine's speed at the moment of the run. With --baseline, DIR holds an older `src/` (e.g.
 * `git archive <commit> src/core src/codecs | tar -x -C DIR`): its decoder is timed in the same
 * rounds, alternating with the current one, so that machine noise hits both alike.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import * as json from '../../src/codecs/json.js';
import { decodeJsonInferRequest } from '../../src/codecs/json-request.js';

const SHARED = resolve(import.meta.dirname, '..', '..', '..', 'shared', 'models');
const repeatsArg = process.argv.indexOf('--repeats');
const REPEATS = repeatsArg > 0 ? Number(process.argv[repeatsArg + 1]) : 15;
const baselineArg = process.argv.indexOf('--baseline');
const BASELINE = baselineArg > 0 ? resolve(process.argv[baselineArg + 1]!) : undefined;

type JsonCodec = typeof json;
type Decoder = (body: Buffer) => number;

/** The decode path of the REST door: the codec's body parser when it has one, then the request decoder. */
function decoderOf(codec: Partial<JsonCodec>): Decoder {
  const parse = codec.parseJsonBody ?? ((body: Buffer | string) => JSON.parse(body.toString()));
  return (body) => codec.decodeInferRequest!(parse(body)).inputs.length;
}

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

/** Token ids as a text model takes them; beyond 2^53 only the precision-keeping parser reads them exactly. */
function int64Body(long: boolean): Buffer {
  const ids = Array.from({ length: 4096 }, (_, i) => (long ? `${2n ** 60n + BigInt(i * 7919)}` : String(1 + ((i * 7919) % 4000))));
  return Buffer.from(`{"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,4096],"data":[${ids.join(',')}]}]}`);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Iterations of `fn` that take about 25 ms: short rounds, so that alternating ones see the same machine. */
function calibrate(fn: () => void): number {
  fn();
  let iterations = 1;
  for (;;) {
    const t = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    const elapsed = performance.now() - t;
    if (elapsed > 25) return Math.max(1, Math.round((25 * iterations) / elapsed));
    iterations *= 2;
  }
}

/** Median and fastest time of one call of each function, in microseconds, over alternating rounds. */
function measure(fns: Array<() => void>): Array<{ median: number; min: number }> {
  const counts = fns.map(calibrate);
  const samples: number[][] = fns.map(() => []);
  for (let r = 0; r < REPEATS * 8; r++) {
    fns.forEach((fn, k) => {
      const t = performance.now();
      for (let i = 0; i < counts[k]!; i++) fn();
      samples[k]!.push(((performance.now() - t) / counts[k]!) * 1000);
    });
  }
  return samples.map((x) => ({ median: median(x), min: Math.min(...x) }));
}

const image = mobilenetImage();
const cases: Array<[string, Buffer]> = [
  ['breast_cancer 1x30 FP32', breastCancerBody()],
  ['mobilenet 1x3x224x224 FP32, flat', mobilenetBody(image, false)],
  ['mobilenet 1x3x224x224 FP32, nested', mobilenetBody(image, true)],
  ['INT64 1x4096, ids below 2^53', int64Body(false)],
  ['INT64 1x4096, ids beyond 2^53 (exact path)', int64Body(true)],
];

/** The REST door's decoder: the single-pass reader, the general decoder for what it does not take. */
const current: Decoder = (body) => decodeJsonInferRequest(body).inputs.length;
/** The general decoder of this tree (JSON.parse, then the tensors), or of an older tree. */
const baseline = decoderOf(BASELINE ? ((await import(pathToFileURL(resolve(BASELINE, 'src', 'codecs', 'json.ts')).href)) as JsonCodec) : json);

const show = (t: { median: number; min: number }) => `${t.median.toFixed(1)} (${t.min.toFixed(1)})`;
const columns = ['request', 'body bytes', 'JSON.parse alone', BASELINE ? 'decode, baseline' : 'general decoder', 'single-pass decode', 'single-pass / general'];
console.log('Times in µs per request: median (fastest) of the rounds; the ratio is of medians (of fastest).');
console.log(`| ${columns.join(' | ')} |`);
console.log(`|${columns.map(() => '---').join('|')}|`);
for (const [name, body] of cases) {
  let sink = 0;
  const fns: Array<() => void> = [() => void (sink += (JSON.parse(body.toString('utf8')) as { inputs: unknown[] }).inputs.length)];
  fns.push(() => void (sink += baseline(body)));
  fns.push(() => void (sink += current(body)));
  const times = measure(fns);
  if (sink === 0) throw new Error('nothing decoded');
  const now = times[times.length - 1]!;
  const ref = times[1]!;
  const cells = [name, String(body.length), show(times[0]!), show(times[1]!), show(now), `${(now.median / ref.median).toFixed(2)} (${(now.min / ref.min).toFixed(2)})`];
  console.log(`| ${cells.join(' | ')} |`);
}
