/**
 * Rate limiting across three real inferd servers sharing one real Redis, driven over HTTP with
 * an API key: the admitted rate tracks the configured rate within 5% and a burst is bounded by
 * the bucket, with far fewer Redis calls than requests (tokens are leased in blocks); killing
 * Redis makes each server limit on its own (a log line, the gauge, no 5xx), and the servers go
 * back to the shared bucket when Redis returns. Uses the compiled CLI (`npm run build`).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/security/authn/api-keys.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { BC_ROW } from '../models/support.js';
import { EXAMPLES } from '../support/paths.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { makeRepository, startChild, type ChildServer } from '../support/server.js';

// Low enough that a loaded two-core machine can offer well over the limit through three servers.
const RATE = 50;
const BURST = 25;
/** max_lease_share 0.1 of min(burst, rate). */
const MAX_LEASE = 2;
const BODY = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array.from(BC_ROW) }] });

interface Tally {
  admitted: number;
  refused: number;
  other: Record<number, number>;
  offered: number;
  first: number;
  last: number;
  /** When the last request was sent: no token that accrues after it can be spent. */
  lastSent: number;
  /** Answers that lacked the headers a client needs to back off honestly. */
  missingHeaders: number;
  minRetryAfter: number;
}

let redis: RedisServer;
let servers: ChildServer[] = [];
let keys: { steady: string; burst: string };

async function post(server: ChildServer, key: string, tally: Tally): Promise<void> {
  tally.offered += 1;
  tally.first = Math.min(tally.first, Date.now());
  tally.lastSent = Math.max(tally.lastSent, Date.now());
  const response = await fetch(`${server.url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: BODY });
  await response.arrayBuffer();
  tally.last = Math.max(tally.last, Date.now());
  const h = response.headers;
  if (h.get('ratelimit-limit') !== String(BURST) || h.get('ratelimit-remaining') === null || h.get('ratelimit-reset') === null) tally.missingHeaders += 1;
  if (response.status === 200) tally.admitted += 1;
  else if (response.status === 429) {
    tally.refused += 1;
    const retryAfter = Number(h.get('retry-after'));
    if (!(retryAfter >= 1)) tally.missingHeaders += 1;
    tally.minRetryAfter = Math.min(tally.minRetryAfter, retryAfter);
  } else tally.other[response.status] = (tally.other[response.status] ?? 0) + 1;
}

function tally(): Tally {
  return { admitted: 0, refused: 0, other: {}, offered: 0, first: Infinity, last: 0, lastSent: 0, missingHeaders: 0, minRetryAfter: Infinity };
}

/** `loops` request loops per server, as fast as answers come, for `ms`. */
async function drive(key: string, ms: number, loops = 4): Promise<Tally & { windowMs: number }> {
  const t = tally();
  const end = Date.now() + ms;
  await Promise.all(
    servers.flatMap((server) =>
      Array.from({ length: loops }, async () => {
        while (Date.now() < end) await post(server, key, t);
      }),
    ),
  );
  // From the first request sent to the last one: a slow last answer on a loaded machine must not
  // count as time in which the bucket could have admitted more.
  return { ...t, windowMs: t.lastSent - t.first };
}

async function metric(server: ChildServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(' ')[1]);
}

beforeAll(async () => {
  redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'inferd-rl-servers-'));
  const pepper = randomBytes(32);
  const pepperFile = join(dir, 'pepper');
  await writeFile(pepperFile, pepper.toString('hex'));
  await chmod(pepperFile, 0o600);
  const registry = `sqlite:${join(dir, 'registry.db')}`;
  const db = await openSecurityDatabase(registry);
  const store = new ApiKeyStore(db, { pepper });
  keys = {
    steady: (await store.create({ name: 'steady', roles: ['client'] }, 'test')).key,
    burst: (await store.create({ name: 'burst', roles: ['client'] }, 'test')).key,
  };
  await db.close();
  const config = join(dir, 'inferd.yaml');
  await writeFile(
    config,
    `registry: ${registry}
logging: { access_log: false }
security:
  enabled: true
  authentication: { api_keys: { pepper: { file: ${pepperFile} } } }
  authorization: { roles: { client: { permissions: [infer, metadata] } } }
  rate_limit:
    enabled: true
    redis_url: ${redis.url}
    rate_per_second: ${RATE}
    burst: ${BURST}
    max_lease_share: 0.1
    redis_timeout_ms: 2000
    redis_retry_ms: 200
`,
  );
  const repository = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
  servers = await Promise.all([1, 2, 3].map(() => startChild(['--config', config, '--model-repository', repository, '--log-level', 'info'])));
}, 90_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await redis?.stop();
});

describe('three inferd servers sharing one Redis bucket', () => {
  it('a simultaneous burst through the three is bounded by the bucket', async () => {
    const t = tally();
    const start = Date.now();
    await Promise.all(servers.flatMap((server) => Array.from({ length: 30 }, () => post(server, keys.burst, t))));
    const elapsedMs = Date.now() - start;
    expect(t.other).toEqual({});
    expect(t.missingHeaders).toBe(0);
    expect(t.admitted + t.refused).toBe(90);
    expect(t.admitted).toBeGreaterThanOrEqual(BURST * 0.95);
    expect(t.admitted).toBeLessThanOrEqual(BURST + Math.ceil((RATE * elapsedMs) / 1000));
  });

  it('admits within 5% of the configured rate, with one Redis call per block of tokens', async () => {
    const before = await Promise.all(servers.map((s) => metric(s, 'inferd_rate_limit_lease_calls_total')));
    const result = await drive(keys.steady, 3000);
    expect(result.other, 'no request may fail for any other reason than the limit').toEqual({});
    expect(result.missingHeaders).toBe(0);
    expect(result.minRetryAfter).toBe(1);
    const expected = BURST + (RATE * result.windowMs) / 1000;
    expect(result.offered, 'the offered load must exceed the limit for the test to mean anything').toBeGreaterThan(expected * 1.5);
    expect(Math.abs(result.admitted - expected) / expected, JSON.stringify({ ...result, expected })).toBeLessThan(0.05);
    // Each server took its share from the shared bucket, not a bucket of its own.
    const after = await Promise.all(servers.map((s) => metric(s, 'inferd_rate_limit_lease_calls_total')));
    const leaseCalls = after.reduce((sum, v, i) => sum + v - before[i]!, 0);
    expect(leaseCalls).toBeGreaterThan(0);
    expect(leaseCalls).toBeLessThan(result.admitted + result.refused);
    expect(await Promise.all(servers.map((s) => metric(s, 'inferd_rate_limit_degraded')))).toEqual([0, 0, 0]);
  });

  it('Redis killed: each server limits on its own, nothing fails; back to the shared bucket when Redis returns', async () => {
    await redis.stop();
    const during = await drive(keys.steady, 2000, 5);
    expect(during.other, 'an outage of Redis must not fail requests').toEqual({});
    expect(during.missingHeaders).toBe(0);
    expect(await Promise.all(servers.map((s) => metric(s, 'inferd_rate_limit_degraded')))).toEqual([1, 1, 1]);
    for (const server of servers) expect(server.output().match(/rate limiting degraded to per-replica limits/g)).toHaveLength(1);
    // Still limited, now per server: at most three buckets' worth (plus what each still held
    // leased when Redis went), and more than one bucket (each server has its own).
    const perServer = BURST + (RATE * during.windowMs) / 1000;
    expect(during.admitted).toBeLessThanOrEqual(3 * (perServer + 1 + MAX_LEASE));
    expect(during.admitted).toBeGreaterThan(perServer * 1.2);
    expect(during.refused).toBeGreaterThan(0);

    await redis.start();
    const deadline = Date.now() + 15_000;
    let degraded = [1, 1, 1];
    while (degraded.some((d) => d !== 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      degraded = await Promise.all(servers.map((s) => metric(s, 'inferd_rate_limit_degraded')));
    }
    expect(degraded).toEqual([0, 0, 0]);
    for (const server of servers) expect(server.output()).toContain('rate limiting shared through Redis again');

    // Redis came back empty: a full shared bucket again, shared by the three.
    const back = await drive(keys.steady, 2000);
    expect(back.other).toEqual({});
    const expected = BURST + (RATE * back.windowMs) / 1000;
    expect(back.offered).toBeGreaterThan(expected * 1.5);
    expect(Math.abs(back.admitted - expected) / expected, JSON.stringify({ ...back, expected })).toBeLessThan(0.05);
  }, 40_000);
});
