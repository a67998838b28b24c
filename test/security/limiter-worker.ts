/**
 * One replica of the cross-process rate-limit test: from a shared start time, takes from the
 * shared bucket as fast as Redis answers for a fixed time and prints the counts as JSON.
 * Usage: limiter-worker.ts <redis-url> <rate-per-second> <burst> <key> <start-ms> <duration-ms>
 */
import { SharedRateLimiter } from '../../src/security/ratelimit/limiter.js';

const [url, rate, burst, key, start, duration] = process.argv.slice(2) as [string, string, string, string, string, string];
const limiter = new SharedRateLimiter({ ratePerSecond: Number(rate), burst: Number(burst), redisUrl: url, redisTimeoutMs: 2000 });
if (!(await limiter.ready(10_000))) throw new Error('redis not ready');
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(start) - Date.now())));
const end = Number(start) + Number(duration);
let first = Infinity;
let last = 0;
let admitted = 0;
let offered = 0;
let errors = 0;
const loops = Array.from({ length: 4 }, async () => {
  while (Date.now() < end) {
    offered += 1;
    first = Math.min(first, Date.now());
    try {
      if ((await limiter.take(key)).allowed) admitted += 1;
      last = Date.now();
    } catch {
      errors += 1;
    }
  }
});
await Promise.all(loops);
process.stdout.write(JSON.stringify({ admitted, offered, errors, mode: limiter.mode, first, last }));
await limiter.close();
