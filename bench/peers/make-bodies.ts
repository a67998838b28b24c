/**
 * Writes the request bodies of the FastAPI `/predict` route, filled with the same values
 * (same generator, same seed) that `inferd bench` puts in the first OIP request:
 *   breast_cancer: {"features": [[30 floats]]}
 *   mobilenet_v2:  {"input": [[[[224 floats] x224] x3]]}   (nested, as a pydantic model takes it)
 *
 *   node --import tsx bench/peers/make-bodies.ts <out-dir>
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomInputs } from '../../src/loadgen/inputs.js';

function nest(values: readonly number[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return [...values];
  const [, ...rest] = shape;
  const size = rest.reduce((a, b) => a * b, 1);
  const out: unknown[] = [];
  for (let i = 0; i < shape[0]!; i++) out.push(nest(values.slice(i * size, (i + 1) * size), rest));
  return out;
}

const outDir = process.argv[2] ?? '.';
mkdirSync(outDir, { recursive: true });

const bc = randomInputs([{ name: 'features', datatype: 'FP32', shape: [-1, 30] }], { seed: 1, count: 1 })[0]![0]!;
writeFileSync(path.join(outDir, 'breast_cancer.predict.json'), JSON.stringify({ features: nest(bc.values as number[], bc.shape) }));

const mb = randomInputs([{ name: 'input', datatype: 'FP32', shape: [-1, 3, 224, 224] }], { seed: 1, count: 1 })[0]![0]!;
writeFileSync(path.join(outDir, 'mobilenet_v2.predict.json'), JSON.stringify({ input: nest(mb.values as number[], mb.shape) }));
