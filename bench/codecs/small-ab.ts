/**
 * Small JSON bodies (breast_cancer, one row of 30 floats) on this build against another build:
 * they stay on the event loop and must cost what they cost before.
 *
 *   npx tsx bench/codecs/small-ab.ts --baseline DIR [--rounds 6] [--seconds 4] [--concurrency 16]
 *
 * DIR is a built checkout of the other build (`git archive <commit> | tar -x -C DIR`, a
 * node_modules link, `npx tsc -p tsconfig.build.json` there). Rounds alternate A, B, B, A.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runAB } from '../support/ab.js';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
  },
});
if (!values.baseline) throw new Error('--baseline DIR is required');
const here = resolve(import.meta.dirname, '..', '..');
const { results, summary } = await runAB({
  a: { checkout: resolve(values.baseline) },
  b: { checkout: here },
  rounds: Number(values.rounds),
  seconds: Number(values.seconds),
  concurrency: Number(values.concurrency),
  protocols: ['http'],
});
console.log(JSON.stringify(results));
for (const s of summary) console.log(`${s.protocol}: baseline ${s.a} req/s, this build ${s.b} req/s, ratio ${s.ratio}`);
