/**
 * Throughput of two builds of inferd side by side: breast_cancer at concurrency 64 over REST
 * (JSON) and gRPC, rounds alternating so both meet the same machine load; medians and the
 * ratio B / A in one run.
 *
 *   npx tsx bench/pipeline/compare.ts --a ../old-checkout --b . [--rounds 5] [--seconds 5]
 *
 * Each checkout must be built (`npm run build`).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runAB } from '../support/ab.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
  },
});
if (!values.a) throw new Error('--a <checkout> is required');
const out = await runAB({
  a: { checkout: resolve(values.a) },
  b: { checkout: resolve(values.b!) },
  rounds: Number(values.rounds),
  seconds: Number(values.seconds),
  concurrency: Number(values.concurrency),
  protocols: ['http', 'grpc'],
});
console.log(JSON.stringify(out, null, 2));
