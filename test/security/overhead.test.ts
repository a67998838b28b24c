/**
 * What the security policies add to one inference when the credentials are already cached:
 * API-key authentication, a rate-limit decision and an authorisation check together, measured
 * as the best of many batches (the fastest batch is the one no other process interrupted).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/security/authn/api-keys.js';
import { AuthenticationPolicy } from '../../src/security/authn/policy.js';
import { AuthorizationPolicy } from '../../src/security/authz/policy.js';
import { SharedRateLimiter } from '../../src/security/ratelimit/limiter.js';
import { RateLimitPolicy } from '../../src/security/ratelimit/policy.js';
import { context, recorder, REQUEST, tempSqlite } from './support.js';

describe('policy overhead', () => {
  let sqlite: Awaited<ReturnType<typeof tempSqlite>>;

  beforeAll(async () => {
    sqlite = await tempSqlite();
  });

  afterAll(async () => {
    await sqlite.cleanup();
  });

  it('API key + local rate limit + authorisation cost under 25 µs per request', async () => {
    const keys = new ApiKeyStore(sqlite.db, { pepper: randomBytes(32) });
    const { key } = await keys.create({ name: 'bench', roles: ['client'] }, 'test');
    const authn = new AuthenticationPolicy({ required: true, apiKeys: keys });
    const limiter = new SharedRateLimiter({ ratePerSecond: 1e9, burst: 1e9 });
    const rate = new RateLimitPolicy({ limiter });
    const authz = new AuthorizationPolicy({ roles: { client: { permissions: ['infer'], models: ['fraud-*'] } } });
    const rec = recorder();
    const once = () => {
      const ctx = context({ 'x-api-key': key }, 'fraud-eu');
      return authn.infer(ctx, REQUEST, (c1, r1) => rate.infer(c1, r1, (c2, r2) => authz.infer(c2, r2, rec.infer)));
    };
    await once();
    let best = Infinity;
    for (let b = 0; b < 50; b++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 500; i++) await once();
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 500 / 1000);
    }
    expect(rec.calls).toBe(25_001);
    expect(best).toBeLessThan(25);
    await limiter.close();
  });
});
