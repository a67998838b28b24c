/**
 * How often requests wait for Redis under the shared rate limit: 64 request loops for one
 * identity (each "request" holds its slot 2 ms, about 20,000 req/s) through a limiter leasing
 * from a throwaway redis-server, for a few seconds; counts the requests that found no token
 * held and waited for a lease call. On a loaded machine Redis (or this process) is not always
 * scheduled at once, so a lease that runs out before its successor arrives stalls every
 * request in flight. Pass built limiter modules to compare builds (default: this checkout's).
 *
 *   npx tsx bench/security/lease-waits.ts [--seconds 3] [--runs 3] [dist/security/ratelimit/limiter.js ...]
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBenchRedis } from './fixture.js';

const { values, positionals } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, runs: { type: 'string', default: '3' } }, allowPositionals: true });
const modules = positionals.length > 0 ? positionals.map((p) => resolve(p)) : [resolve(import.meta.dirname, '..', '..', 'src', 'security', 'ratelimit', 'limiter.ts')];
const redis = await startBenchRedis();

interface Limiter {
  takeNow(key: string): unknown;
  takeFromNextLease(key: string): Promise<unknown>;
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

async function run(path: string, seconds: number): Promise<{ requests: number; waits: number; perSecond: number }> {
  const { SharedRateLimiter } = (await import(path)) as { SharedRateLimiter: new (o: object) => Limiter };
  const limiter = new SharedRateLimiter({ ratePerSecond: 1e6, burst: 1e6, redisUrl: redis.url, keyPrefix: `bench:${Math.random()}:` });
  if (!(await limiter.ready())) throw new Error('redis-server did not answer');
  let waits = 0;
  let requests = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (Date.now() < end) {
        if (limiter.takeNow('caller') === undefined) {
          waits += 1;
          await limiter.takeFromNextLease('caller');
        }
        requests += 1;
        await new Promise((r) => setTimeout(r, 2));
      }
    }),
  );
  await limiter.close();
  return { requests, waits, perSecond: Math.round(requests / seconds) };
}

try {
  for (let i = 0; i < Number(values.runs); i++) {
    for (const path of modules) console.log(path, JSON.stringify(await run(path, Number(values.seconds))), `load ${loadavg()[0]!.toFixed(2)}`);
  }
} finally {
  redis.stop();
}
