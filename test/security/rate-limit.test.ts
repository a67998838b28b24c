/**
 * Rate limiting against a real Redis: three limiters (as three replicas would) share one
 * bucket; the admitted rate tracks the configured rate within 5% and a burst is bounded by the
 * bucket; killing Redis mid-test degrades to local limiting without a single error, and the
 * limiter goes back to Redis when it returns. The same through three inferd servers over HTTP
 * is in rate-limit-servers.test.ts.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferdError, RateLimitedError, httpStatusOf } from '../../src/core/errors.js';
import { gcraStep, LocalGcra } from '../../src/security/ratelimit/gcra.js';
import { ConcurrencyLimiter, SharedRateLimiter } from '../../src/security/ratelimit/limiter.js';
import { RateLimitPolicy } from '../../src/security/ratelimit/policy.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { context, recorder, REQUEST } from './support.js';

describe('GCRA arithmetic', () => {
  it('admits a burst, then one request per emission interval', () => {
    let now = 1_000_000;
    const gcra = new LocalGcra({ ratePerSecond: 10, burst: 5 }, 100, () => now);
    const first = Array.from({ length: 7 }, () => gcra.take('a').allowed);
    expect(first).toEqual([true, true, true, true, true, false, false]);
    const refused = gcra.take('a');
    expect(refused.retryAfterMs).toBeCloseTo(100, 6);
    now += 100;
    expect(gcra.take('a').allowed).toBe(true);
    expect(gcra.take('a').allowed).toBe(false);
    // Another key has its own bucket.
    expect(gcra.take('b').remaining).toBe(4);
  });

  it('admit (no decision object) decides as take does, key by key, request by request', () => {
    let now = 5_000;
    const params = { ratePerSecond: 50, burst: 8 };
    const byTake = new LocalGcra(params, 100, () => now);
    const byAdmit = new LocalGcra(params, 100, () => now);
    let seed = 7;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    let refusals = 0;
    for (let i = 0; i < 2_000; i++) {
      now += random() < 0.7 ? 0 : random() * 60;
      const key = random() < 0.8 ? 'busy' : 'quiet';
      const decision = byTake.take(key);
      const remaining = byAdmit.admit(key);
      expect(remaining >= 0).toBe(decision.allowed);
      if (decision.allowed) {
        expect(remaining).toBe(decision.remaining);
        expect(byAdmit.admittedResetMs).toBeCloseTo(decision.resetMs, 9);
      } else refusals += 1;
    }
    expect(refusals).toBeGreaterThan(100);
  });

  it('never admits more than burst + rate * d over any interval d (no window-edge doubling)', () => {
    const params = { ratePerSecond: 100, burst: 10 };
    let tat: number | undefined;
    const admitted: number[] = [];
    for (let t = 0; t < 5000; t += 0.5) {
      const { decision, newTat } = gcraStep(tat, t, params);
      if (decision.allowed) {
        admitted.push(t);
        tat = newTat;
      }
    }
    for (const windowMs of [10, 100, 1000]) {
      for (let i = 0; i < admitted.length; i++) {
        let j = i;
        while (j < admitted.length && admitted[j]! < admitted[i]! + windowMs) j++;
        expect(j - i).toBeLessThanOrEqual(params.burst + (params.ratePerSecond * windowMs) / 1000);
      }
    }
  });
});

describe('shared rate limiting through a real Redis', () => {
  let redis: RedisServer;
  const limiters: SharedRateLimiter[] = [];
  const logs: string[] = [];
  const log = { warn: (_f: Record<string, unknown>, m: string) => logs.push(`warn ${m}`), info: (_f: Record<string, unknown>, m: string) => logs.push(`info ${m}`) };

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    for (const l of limiters) await l.close();
    await redis.stop();
  });

  function replica(ratePerSecond: number, burst: number, metrics?: Registry): SharedRateLimiter {
    const limiter = new SharedRateLimiter({ ratePerSecond, burst, redisUrl: redis.url, redisTimeoutMs: 2000, redisRetryMs: 200, log, ...(metrics ? { metrics } : {}) });
    limiters.push(limiter);
    return limiter;
  }

  /** Each replica runs `loops` request loops as fast as Redis answers, until `ms` pass. */
  async function drive(replicas: SharedRateLimiter[], key: string, ms: number, loops = 3): Promise<{ admitted: number; offered: number; elapsedMs: number; errors: number }> {
    let admitted = 0;
    let offered = 0;
    let errors = 0;
    const start = Date.now();
    const end = start + ms;
    await Promise.all(
      replicas.flatMap((r) =>
        Array.from({ length: loops }, async () => {
          while (Date.now() < end) {
            try {
              offered += 1;
              if ((await r.take(key)).allowed) admitted += 1;
            } catch {
              errors += 1;
            }
            await new Promise((resolve) => setImmediate(resolve));
          }
        }),
      ),
    );
    return { admitted, offered, elapsedMs: Date.now() - start, errors };
  }

  it('three replicas admit within 5% of the configured rate', async () => {
    // A bucket of 300 ms: a stall of the test's own event loop shorter than that loses no tokens.
    const replicas = [replica(200, 60), replica(200, 60), replica(200, 60)];
    for (const r of replicas) expect(await r.ready()).toBe(true);
    const { admitted, offered, elapsedMs, errors } = await drive(replicas, 'steady', 3000);
    expect(errors).toBe(0);
    expect(replicas.map((r) => r.mode)).toEqual(['shared', 'shared', 'shared']);
    const expected = 60 + (200 * elapsedMs) / 1000;
    expect(offered, 'the offered load must exceed the limit for the test to mean anything').toBeGreaterThan(expected * 1.5);
    expect(Math.abs(admitted - expected) / expected, JSON.stringify({ admitted, expected, offered, elapsedMs })).toBeLessThan(0.05);
  });

  it('a caller spending leased tokens gets its RateLimit fields without a Redis call, one token each', async () => {
    const metrics = new Registry();
    // Leases of up to 25 tokens; the bucket refills 0.1 token per ms.
    const limiter = new SharedRateLimiter({ ratePerSecond: 100, burst: 1000, maxLeaseFraction: 0.25, redisUrl: redis.url, redisTimeoutMs: 2000, log, metrics });
    limiters.push(limiter);
    expect(await limiter.ready()).toBe(true);
    const leaseCalls = async (): Promise<number> => Number(/inferd_rate_limit_lease_calls_total (\d+)/.exec(await metrics.getSingleMetricAsString('inferd_rate_limit_lease_calls_total'))![1]);
    const policy = new RateLimitPolicy({ limiter });
    const rec = recorder();
    const call = async (subject: string): Promise<Record<string, string>> => {
      const c = context({}, 'iris');
      c.identity = { subject, method: 'api_key', roles: [] };
      await policy.infer(c, REQUEST, rec.infer);
      return c.responseHeaders!;
    };
    const started = Date.now();
    // Demand first, so the next lease holds several tokens.
    for (let round = 0; round < 3; round++) await Promise.all(Array.from({ length: 25 }, () => call('fields')));
    const callsBefore = await leaseCalls();
    const seen: Array<Record<string, string>> = [];
    for (let i = 0; i < 10; i++) seen.push(await call('fields'));
    expect(await leaseCalls(), 'ten requests in a row spend held tokens, not ten Redis calls').toBeLessThan(callsBefore + 5);
    const refilled = Math.ceil(((Date.now() - started) * 100) / 1000) + 1;
    seen.forEach((headers, i) => {
      expect(headers['ratelimit-limit']).toBe('1000');
      expect(Number(headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
      expect(Number(headers['ratelimit-reset'])).toBeLessThanOrEqual(10);
      expect(headers['retry-after']).toBeUndefined();
      // What the bucket has left never exceeds what was not spent, give or take the refill.
      expect(Number(headers['ratelimit-remaining'])).toBeLessThanOrEqual(1000 - (75 + i + 1) + refilled);
    });
    // Another caller in between has its own lease and bucket; the first one's count goes on from where it was.
    const other = await call('other-caller');
    expect(Number(other['ratelimit-remaining'])).toBeGreaterThanOrEqual(1000 - 25);
    const back = await call('fields');
    expect(Number(back['ratelimit-remaining'])).toBeLessThanOrEqual(1000 - 86 + Math.ceil(((Date.now() - started) * 100) / 1000) + 1);
    expect(rec.calls).toBe(87);
  });

  it('leases tokens in blocks: concurrent requests for one identity share one Redis call', async () => {
    const metrics = new Registry();
    // A limit no in-process loop can reach: every request is admitted, so only the calls are counted.
    const limiter = replica(100_000_000, 100_000_000, metrics);
    expect(await limiter.ready()).toBe(true);
    const leaseCalls = async (): Promise<number> => Number(/inferd_rate_limit_lease_calls_total (\d+)/.exec(await metrics.getSingleMetricAsString('inferd_rate_limit_lease_calls_total'))![1]);
    // 64 at once on a cold identity: one call for the first, one for the 63 that waited on it.
    const first = await Promise.all(Array.from({ length: 64 }, () => limiter.take('blocks')));
    expect(first.every((d) => d.allowed)).toBe(true);
    expect(await leaseCalls()).toBeLessThanOrEqual(3);
    // Sustained traffic: far fewer calls than requests, and each lease no larger than the cap.
    const sustained = await drive([limiter], 'blocks', 500, 64);
    expect(sustained.errors).toBe(0);
    expect(sustained.admitted).toBe(sustained.offered);
    const calls = await leaseCalls();
    expect(calls).toBeLessThan((sustained.offered + 64) / 10);
    // The next lease is asked for ahead of need: requests seldom wait for Redis at all.
    const waits = Number(/inferd_rate_limit_lease_waits_total (\d+)/.exec(await metrics.getSingleMetricAsString('inferd_rate_limit_lease_waits_total'))![1]);
    expect(waits).toBeGreaterThan(0); // the cold start waited
    expect(waits).toBeLessThan((sustained.offered + 64) / 10);
    expect(limiter.leaseLimit).toBe(2_000_000);
    // Remaining counts what the shared bucket and this lease still hold: never more than the bucket.
    const decision = await limiter.take('blocks');
    expect(decision.remaining).toBeGreaterThan(0);
    expect(decision.remaining).toBeLessThanOrEqual(100_000_000);
  });

  it('a simultaneous burst from three replicas is bounded by the bucket', async () => {
    const replicas = [replica(10, 30), replica(10, 30), replica(10, 30)];
    for (const r of replicas) await r.ready();
    const start = Date.now();
    const decisions = await Promise.all(replicas.flatMap((r) => Array.from({ length: 60 }, () => r.take('burst'))));
    const elapsed = Date.now() - start;
    const admitted = decisions.filter((d) => d.allowed).length;
    expect(admitted).toBeGreaterThanOrEqual(30);
    expect(admitted).toBeLessThanOrEqual(30 + Math.ceil((10 * elapsed) / 1000));
    const refused = decisions.find((d) => !d.allowed)!;
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(100.5);
  });

  it('Redis stopped mid-test: local limiting, no errors, one log line; back to shared when it returns', async () => {
    const metrics = new Registry();
    const limiter = replica(100, 10, metrics);
    await limiter.ready();
    expect((await drive([limiter], 'outage', 300, 1)).errors).toBe(0);
    expect(limiter.mode).toBe('shared');

    await redis.stop();
    logs.length = 0;
    // The first call after the kill waits for the connection to fail (how long depends on the
    // machine's load), and is answered locally.
    const first = await limiter.take('outage-local');
    expect(first.allowed).toBe(true);
    expect(limiter.mode).toBe('degraded');
    const during = await drive([limiter], 'outage-local', 1000, 2);
    expect(during.errors).toBe(0);
    expect(limiter.mode).toBe('degraded');
    // Still limited, locally: about what is left of the burst + rate * elapsed, not everything offered.
    const expected = 9 + (100 * during.elapsedMs) / 1000;
    expect(during.admitted).toBeLessThanOrEqual(expected + 1);
    expect(during.admitted).toBeGreaterThan(expected * 0.8);
    expect(logs.filter((l) => l.startsWith('warn'))).toHaveLength(1);
    expect(await metrics.getSingleMetricAsString('inferd_rate_limit_degraded')).toMatch(/inferd_rate_limit_degraded 1/);

    await redis.start();
    const deadline = Date.now() + 10_000;
    while (limiter.mode !== 'shared' && Date.now() < deadline) {
      await limiter.take('probe');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(limiter.mode).toBe('shared');
    expect(logs).toContain('info rate limiting shared through Redis again');
    expect(await metrics.getSingleMetricAsString('inferd_rate_limit_degraded')).toMatch(/inferd_rate_limit_degraded 0/);
    // The shared bucket is used again: a second replica sees the first one's spending (give
    // or take the tokens that refilled while it happened, one per 10 ms).
    const other = replica(100, 10);
    await other.ready();
    const spentFrom = Date.now();
    for (let i = 0; i < 10; i++) await limiter.take('after');
    const seen = await other.take('after');
    const refilled = Math.ceil((Date.now() - spentFrom) / 10);
    expect(seen.allowed ? seen.remaining + 1 : 0).toBeLessThanOrEqual(Math.min(refilled, 9));
  }, 30_000);
});

describe('rate-limit policy', () => {
  it('sets RateLimit headers, refuses with 429 and Retry-After, and caps concurrency', async () => {
    const limiter = new SharedRateLimiter({ ratePerSecond: 1, burst: 2 });
    const policy = new RateLimitPolicy({ limiter, concurrency: new ConcurrencyLimiter(1), perModel: true });
    const rec = recorder();
    const ctx = () => {
      const c = context({}, 'iris');
      c.identity = { subject: 'key:1', method: 'api_key', roles: [] };
      return c;
    };
    const first = ctx();
    await policy.infer(first, REQUEST, rec.infer);
    expect(first.responseHeaders).toMatchObject({ 'ratelimit-limit': '2', 'ratelimit-remaining': '1' });
    await policy.infer(ctx(), REQUEST, rec.infer);
    const refused = ctx();
    const error = await policy.infer(refused, REQUEST, rec.infer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(httpStatusOf(error as InferdError)).toBe(429);
    expect((error as InferdError).code).toBe('RESOURCE_EXHAUSTED');
    expect(refused.responseHeaders?.['retry-after']).toBe('1');
    expect(rec.calls).toBe(2);
    // Another model has its own bucket (per_model), but the concurrency cap is per identity.
    let release!: () => void;
    const busy = context({}, 'mnist');
    busy.identity = { subject: 'key:1', method: 'api_key', roles: [] };
    const slow = policy.infer(busy, REQUEST, () => new Promise((resolve) => (release = () => resolve({ model_name: 'm', model_version: '1', outputs: [] }))));
    const other = context({}, 'digits');
    other.identity = { subject: 'key:1', method: 'api_key', roles: [] };
    await new Promise((r) => setImmediate(r));
    await expect(policy.infer(other, REQUEST, rec.infer)).rejects.toThrow(/concurrent/);
    release();
    await slow;
    await limiter.close();
  });
});
