/**
 * The cost of security on the request path: breast_cancer at concurrency 64 over REST with
 * security off (A) and with API-key authentication, authorisation and a Redis-backed rate
 * limit on (B, a limit far above the load so nothing is refused: every request spends a token
 * leased from Redis), alternating rounds, one run; prints the load average around the run.
 * Each round also reports the server's CPU per request (user + system from /proc, all threads
 * and the event-loop thread alone). Then, unless `--rate 0`, the same A/B again open loop at a
 * fixed request rate both sides sustain: the same arrivals batch alike on both sides, so the
 * CPU per request compares the request paths themselves, whatever else the machine runs.
 *
 *   npx tsx bench/security/overhead.ts [--rounds 5] [--seconds 5] [--rate 6000] [--server-warmup 5] [--node-args '...']
 *
 * Each server first serves `--server-warmup` seconds of the same load, unmeasured, so that both
 * are measured with their request paths optimised (steady state, as in production).
 *
 * Starts a throwaway redis-server (Debian's) on a free loopback port.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runAB } from '../support/ab.js';
import { securityBench } from './fixture.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '5' }, rate: { type: 'string', default: '6000' }, 'server-warmup': { type: 'string', default: '5' }, 'node-args': { type: 'string', default: '' } },
});
const root = resolve(import.meta.dirname, '..', '..');
const bench = await securityBench('inferd-secbench');
const loadBefore = loadavg().map((l) => l.toFixed(2));
try {
  // Node flags for both servers (experiments: --perf-basic-prof, heap sizes...).
  const nodeArgs = values['node-args'].split(' ').filter((f) => f !== '');
  const sides = {
    a: { checkout: root, nodeArgs },
    b: { checkout: root, config: bench.configs.secure, headers: { 'x-api-key': bench.key }, nodeArgs },
    rounds: Number(values.rounds),
    seconds: Number(values.seconds),
    concurrency: 64,
    protocols: ['http' as const],
    serverWarmupSeconds: Number(values['server-warmup']),
  };
  const out = await runAB(sides);
  const loadMiddle = loadavg().map((l) => l.toFixed(2));
  const rate = Number(values.rate);
  const fixedRate = rate > 0 ? await runAB({ ...sides, requestRate: rate }) : undefined;
  console.log(
    JSON.stringify(
      {
        ...out,
        ...(fixedRate !== undefined ? { fixedRate: { requestsPerSecond: rate, ...fixedRate } } : {}),
        loadAverage: { before: loadBefore, ...(fixedRate !== undefined ? { betweenPhases: loadMiddle } : {}), after: loadavg().map((l) => l.toFixed(2)) },
      },
      null,
      2,
    ),
  );
} finally {
  bench.stop();
}
