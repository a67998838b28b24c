/**
 * Where the cost of security goes, one layer at a time: breast_cancer at concurrency 64 over REST,
 * four A/B runs from the same build, each adding one layer to the previous one's B side:
 * the API-key header sent (client and parser cost), a registry database configured, API-key
 * authentication + authorisation, and the shared rate limit leasing from a throwaway
 * redis-server. Prints each pair's medians, B / A and the 1-minute load average.
 *
 *   npx tsx bench/security/layers.ts [rounds]
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { runAB } from '../support/ab.js';
import { securityBench } from './fixture.js';

const root = resolve(import.meta.dirname, '..', '..');
const bench = await securityBench('inferd-split');
const { registry: reg, auth, secure } = bench.configs;
const h = { 'x-api-key': bench.key };
const pairs: Record<string, [object, object]> = {
  'off vs off+header': [{ checkout: root }, { checkout: root, headers: h }],
  'off+header vs registry+header': [{ checkout: root, headers: h }, { checkout: root, config: reg, headers: h }],
  'registry vs auth': [{ checkout: root, config: reg, headers: h }, { checkout: root, config: auth, headers: h }],
  'auth vs auth+limit': [{ checkout: root, config: auth, headers: h }, { checkout: root, config: secure, headers: h }],
};
try {
  for (const [name, [a, b]] of Object.entries(pairs)) {
    const out = await runAB({ a: a as never, b: b as never, rounds: Number(process.argv[2] ?? 4), seconds: 3, concurrency: 64, protocols: ['http'] });
    console.log(name, JSON.stringify(out.summary), loadavg()[0].toFixed(2));
  }
} finally {
  bench.stop();
}
