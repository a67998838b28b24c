/**
 * The rate limiter every replica shares: GCRA in Redis, one Lua script, so the
 * read-compute-write is atomic and uses Redis's clock (replicas' clocks need not agree).
 *
 * A replica does not ask Redis once per request: it leases tokens from the shared bucket in
 * blocks (one Lua call takes up to N tokens for an identity) and spends them locally.
 * - N follows the identity's request rate on this replica (about `leaseMs` worth of its
 *   requests), and never exceeds `maxLeaseFraction` of the bucket or of one second's allowance:
 *   a lease holds at most that many tokens away from the other replicas.
 * - Tokens come out of the shared bucket when leased, so more than the bucket allows can never
 *   be admitted; a lease expires after `leaseMs` and what is left of it is returned, so an idle
 *   replica does not keep other replicas short.
 * - Concurrent requests for one identity wait on one lease call, never one Redis call each.
 *   A busy identity's next lease is asked for in the background, before it is needed: when a
 *   lease of several tokens runs down to half, or half its time has passed. The call tops the
 *   tokens held up to the target (within the cap), and while it is in flight the tokens held stay
 *   spendable even past their expiry (they left the shared bucket already), so a busy
 *   identity's requests do not wait for Redis at all, even when Redis or this process is slow
 *   to be scheduled on a loaded machine. The lease term is `leaseMs`, or four recent Redis
 *   round trips when those are slower (at most a second), so the half left when the next call
 *   goes out covers that call's wait.
 * - When the bucket is empty, Redis says when the next token is due; the replica refuses
 *   locally until then (with that Retry-After) and asks again after.
 *
 * When Redis cannot answer (down, or slower than the timeout) the limiter degrades to a local
 * GCRA with the same parameters: requests are still limited, per replica, never failed and
 * never let through unchecked. A gauge and one log line say so; a probe brings it back when
 * Redis returns.
 */
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { Counter, Gauge, type Registry } from 'prom-client';
import { LocalGcra, type RateDecision, type RateLimitParams, emissionIntervalMs } from './gcra.js';

// KEYS[1] the bucket; ARGV[1] emission interval ms, ARGV[2] burst, ARGV[3] tokens wanted.
// Takes min(wanted, available) tokens at once. Returns {granted, remaining, retry_after_ms,
// reset_ms} (numbers as strings: Lua numbers would be truncated to integers).
const LEASE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local available = math.floor((now + tolerance - tat) / interval + 1e-9)
if available < 1 then
  return {0, '0', tostring(tat + interval - tolerance - now), tostring(tat - now)}
end
local granted = math.min(wanted, available)
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {granted, tostring(available - granted), '0', tostring(new_tat - now)}
`;

// KEYS[1] the bucket; ARGV[1] emission interval ms, ARGV[2] tokens given back. The TAT moves
// back by that many intervals, never behind now (a bucket that refilled meanwhile gains nothing).
const RETURN_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat <= now then return 0 end
local new_tat = math.max(now, tat - tonumber(ARGV[2]) * tonumber(ARGV[1]))
if new_tat <= now then redis.call('DEL', KEYS[1]) return 1 end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
return 1
`;

export interface LimiterLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export interface SharedRateLimiterOptions extends RateLimitParams {
  /** `redis://host:port/db`; absent: local limiting only. */
  redisUrl?: string;
  keyPrefix?: string;
  /** A Redis answer slower than this counts as a failure. Default 200 ms (a busy identity renews its lease ahead of need, so its requests do not wait for it). */
  redisTimeoutMs?: number;
  /** Probe interval while degraded. Default 1000 ms. */
  redisRetryMs?: number;
  /** A lease covers about this much of an identity's traffic and expires after it (or four recent Redis round trips, when longer). Default 50 ms. */
  leaseMs?: number;
  /** A lease never holds more than this share of the bucket or of one second's allowance. Default 0.02. */
  maxLeaseFraction?: number;
  log?: LimiterLog;
  metrics?: Registry;
}

export type LimiterMode = 'shared' | 'local' | 'degraded';

/** One identity's lease on this replica. */
interface Lease {
  /** Leased tokens not spent yet. */
  tokens: number;
  /** Local time after which unspent tokens are given back. */
  expiresAt: number;
  /** What the shared bucket had left after the lease was cut. */
  sharedRemaining: number;
  /** Local time at which the shared bucket is full again (as of the last answer). */
  fullAt: number;
  /** The shared bucket was empty: refuse locally until then. */
  deniedUntil: number;
  /** At this many tokens left, the next lease is asked for ahead of need. */
  lowWater: number;
  /** Local time after which a request asks for the next lease ahead of need (half the lease's life). */
  renewAt: number;
  /** The one lease call in flight for this identity. */
  inFlight: Promise<void> | undefined;
  waiting: number;
  /** Requests seen since the last lease call, and when that was: the demand estimate. */
  seen: number;
  lastLeaseAt: number;
  ratePerMs: number;
}

const MAX_LEASE_ROUNDS = 64;

/** Held tokens stay spendable past expiry while the next lease is on its way: they left the shared bucket when leased. */
function canSpend(lease: Lease, now: number): boolean {
  return lease.tokens > 0 && (now < lease.expiresAt || lease.inFlight !== undefined);
}

export class SharedRateLimiter {
  private readonly local: LocalGcra;
  private readonly redis: Redis | undefined;
  private readonly prefix: string;
  private readonly interval: number;
  private readonly intervalMs: string;
  private readonly burst: string;
  private readonly leaseMs: number;
  /** Recent Redis round trip of a lease call (ms): the slowest lately, decaying. */
  private roundTripMs = 0;
  private readonly maxLease: number;
  private readonly leases = new LRUCache<string, Lease>({
    max: 100_000,
    dispose: (lease) => {
      if (lease === this.lastLease) this.lastLease = undefined;
    },
  });
  private lastKey: string | undefined;
  private lastLease: Lease | undefined;
  /** Identities holding leased tokens, for the sweep that returns expired ones. */
  private readonly holding = new Set<string>();
  private sweep: NodeJS.Timeout | undefined;
  private leaseSha: string | undefined;
  private returnSha: string | undefined;
  private degraded = false;
  private probe: NodeJS.Timeout | undefined;
  private readonly degradedGauge: Gauge | undefined;
  private readonly fallbackCounter: Counter | undefined;
  private readonly leaseCounter: Counter | undefined;
  private readonly waitCounter: Counter | undefined;
  private closed = false;
  /** Time to a full bucket as of the last token spent from a lease (ms); read right after `spendHeld`. */
  heldResetMs = 0;

  constructor(private readonly options: SharedRateLimiterOptions) {
    this.local = new LocalGcra(options);
    this.prefix = options.keyPrefix ?? 'inferd:rl:';
    this.interval = emissionIntervalMs(options);
    this.intervalMs = String(this.interval);
    this.burst = String(options.burst);
    this.leaseMs = options.leaseMs ?? 50;
    this.maxLease = Math.max(1, Math.floor((options.maxLeaseFraction ?? 0.02) * Math.min(options.burst, options.ratePerSecond)));
    if (options.metrics !== undefined) {
      this.degradedGauge = new Gauge({
        name: 'inferd_rate_limit_degraded',
        help: '1 while the shared rate limiter cannot reach Redis and each replica limits on its own',
        registers: [options.metrics],
      });
      this.fallbackCounter = new Counter({
        name: 'inferd_rate_limit_local_decisions_total',
        help: 'Rate-limit decisions made locally because Redis could not answer',
        registers: [options.metrics],
      });
      this.leaseCounter = new Counter({
        name: 'inferd_rate_limit_lease_calls_total',
        help: 'Calls to Redis that lease tokens from a shared bucket',
        registers: [options.metrics],
      });
      this.waitCounter = new Counter({
        name: 'inferd_rate_limit_lease_waits_total',
        help: 'Requests that waited for a Redis lease call because this replica held no token for their identity',
        registers: [options.metrics],
      });
      this.degradedGauge.set(0);
    }
    if (options.redisUrl !== undefined) {
      this.redis = new Redis(options.redisUrl, {
        // Fail fast instead of queueing: a decision must not wait for a reconnect.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: options.redisTimeoutMs ?? 200,
        connectTimeout: 1000,
        retryStrategy: (times) => Math.min(times * 100, 2000),
        lazyConnect: false,
      });
      // Connection errors are reported through the degraded state, not as unhandled events.
      this.redis.on('error', () => undefined);
      this.sweep = setInterval(() => this.returnExpired(), this.leaseMs);
      this.sweep.unref();
    }
  }

  get mode(): LimiterMode {
    if (this.redis === undefined) return 'local';
    return this.degraded ? 'degraded' : 'shared';
  }

  /** The bucket size (the `RateLimit-Limit` of every answer). */
  get limit(): number {
    return this.options.burst;
  }

  /** The most tokens one lease takes. */
  get leaseLimit(): number {
    return this.maxLease;
  }

  /** Waits until Redis answers (or `timeoutMs` passes); for start-up and tests. */
  async ready(timeoutMs = 5000): Promise<boolean> {
    if (this.redis === undefined) return false;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.redis.status === 'ready') {
        try {
          await this.redis.ping();
          return true;
        } catch {
          // not yet
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /**
   * The allocation-free path of a busy identity: spends a token this replica holds for `key`
   * (or, limiting locally, admits by the local GCRA) and returns what the bucket has left; -1
   * when that cannot be done (then `takeNow` decides, and says when to retry). The bucket's
   * time to full goes to `heldResetMs`, read right after the call.
   */
  spendHeld(key: string): number {
    if (this.redis === undefined || this.degraded) {
      const remaining = this.local.admit(key);
      if (remaining < 0) return -1;
      if (this.redis !== undefined) this.fallbackCounter?.inc();
      this.heldResetMs = this.local.admittedResetMs;
      return remaining;
    }
    const lease = this.leaseOf(key);
    const now = Date.now();
    if (!canSpend(lease, now)) return -1;
    lease.seen += 1;
    return this.spend(key, lease, now);
  }

  /**
   * The decision when it needs no Redis call (a leased token, a known-empty bucket, local
   * mode); undefined when `take` must ask Redis.
   */
  takeNow(key: string): RateDecision | undefined {
    if (this.redis === undefined || this.degraded) return this.takeLocally(key);
    const lease = this.leaseOf(key);
    lease.seen += 1;
    return this.fromLease(key, lease, Date.now());
  }

  /**
   * This identity's lease, created empty on first use. The last one looked up is kept aside:
   * a run of requests from one identity skips the LRU (whose recency only matters once
   * another key has come between, and then the LRU is asked again).
   */
  private leaseOf(key: string): Lease {
    if (key === this.lastKey && this.lastLease !== undefined) return this.lastLease;
    let lease = this.leases.get(key);
    if (lease === undefined) {
      lease = { tokens: 0, expiresAt: 0, sharedRemaining: 0, fullAt: 0, deniedUntil: 0, lowWater: 0, renewAt: 0, inFlight: undefined, waiting: 0, seen: 0, lastLeaseAt: 0, ratePerMs: 0 };
      this.leases.set(key, lease);
    }
    this.lastKey = key;
    this.lastLease = lease;
    return lease;
  }

  async take(key: string): Promise<RateDecision> {
    return this.takeNow(key) ?? this.takeFromNextLease(key);
  }

  /** After `takeNow` said undefined: waits for this identity's next lease (one call for all waiters). */
  async takeFromNextLease(key: string): Promise<RateDecision> {
    if (this.redis === undefined || this.degraded) return this.takeLocally(key);
    const lease = this.leases.get(key);
    if (lease === undefined) return this.take(key);
    this.waitCounter?.inc();
    lease.waiting += 1;
    try {
      for (let round = 0; round < MAX_LEASE_ROUNDS; round++) {
        if (lease.inFlight === undefined) lease.inFlight = this.renew(key, lease);
        if (lease.inFlight !== undefined) await lease.inFlight;
        if (this.redis === undefined || this.degraded) return this.takeLocally(key);
        const decision = this.fromLease(key, lease, Date.now());
        if (decision !== undefined) return decision;
      }
      // Others kept taking what each lease brought: refuse this one for an interval.
      return { allowed: false, limit: this.options.burst, remaining: 0, retryAfterMs: this.interval, resetMs: Math.max(0, lease.fullAt - Date.now()) };
    } finally {
      lease.waiting -= 1;
    }
  }

  private fromLease(key: string, lease: Lease, now: number): RateDecision | undefined {
    if (canSpend(lease, now)) {
      const remaining = this.spend(key, lease, now);
      return { allowed: true, limit: this.options.burst, remaining, retryAfterMs: 0, resetMs: this.heldResetMs };
    }
    if (now < lease.deniedUntil) {
      return { allowed: false, limit: this.options.burst, remaining: 0, retryAfterMs: lease.deniedUntil - now, resetMs: Math.max(0, lease.fullAt - now) };
    }
    return undefined;
  }

  /** Spends one held token (after `canSpend`), asks for the next lease when due; returns what the bucket has left. */
  private spend(key: string, lease: Lease, now: number): number {
    lease.tokens -= 1;
    if ((lease.tokens < lease.lowWater || now >= lease.renewAt) && lease.inFlight === undefined && now >= lease.deniedUntil) lease.inFlight = this.renew(key, lease);
    this.heldResetMs = Math.max(0, lease.fullAt - now);
    // Tokens still held from the lease before a renewal were taken while the bucket refilled since: never claim more than the bucket.
    return Math.min(this.options.burst, lease.tokens + lease.sharedRemaining);
  }

  /**
   * Sizes this identity's next lease and asks Redis for it (one Lua call every waiter shares);
   * undefined when no call is needed (enough tokens held) or possible (Redis not connected).
   */
  private renew(key: string, lease: Lease): Promise<void> | undefined {
    const now = Date.now();
    // Demand since the last lease call, smoothed: size the next lease to about leaseMs of it.
    const elapsed = Math.max(1, now - lease.lastLeaseAt);
    const observed = lease.lastLeaseAt === 0 ? 0 : lease.seen / elapsed;
    lease.ratePerMs = lease.ratePerMs === 0 ? observed : 0.5 * lease.ratePerMs + 0.5 * observed;
    lease.seen = 0;
    lease.lastLeaseAt = now;
    // The tokens to hold: about one lease term of this identity's demand, within the cap.
    const term = this.leaseTerm();
    const target = Math.min(this.maxLease, Math.max(lease.waiting, Math.ceil(lease.ratePerMs * term), 1));
    // Tokens of an expired lease go back; those of a live one (asked for ahead of need) count towards the target.
    let leftover = 0;
    if (lease.tokens > 0 && now >= lease.expiresAt) {
      leftover = lease.tokens;
      lease.tokens = 0;
    }
    const wanted = Math.min(this.maxLease, Math.max(lease.waiting, target - lease.tokens));
    if (wanted <= 0) {
      // Enough held for the demand: keep it for another lease term without asking Redis.
      lease.expiresAt = now + term;
      lease.renewAt = now + term / 2;
      return undefined;
    }
    const redis = this.redis!;
    if (redis.status !== 'ready') {
      if (leftover > 0) lease.tokens = leftover;
      this.degrade(new Error(`redis connection is ${redis.status}`));
      return undefined;
    }
    if (leftover > 0) void this.giveBack(key, leftover);
    return this.leaseFromRedis(key, lease, redis, target, wanted);
  }

  /** How long a lease lasts: leaseMs, or four recent Redis round trips when those are slower. */
  private leaseTerm(): number {
    return Math.min(1000, Math.max(this.leaseMs, 4 * this.roundTripMs));
  }

  private async leaseFromRedis(key: string, lease: Lease, redis: Redis, target: number, wanted: number): Promise<void> {
    try {
      this.leaseCounter?.inc();
      const askedAt = Date.now();
      const [granted, remaining, retryAfter, reset] = await this.script(redis, 'lease', this.prefix + key, String(wanted));
      const answeredAt = Date.now();
      // A slow answer counts at once; the estimate forgets it gradually.
      this.roundTripMs = Math.max(answeredAt - askedAt, this.roundTripMs * 0.9);
      const term = this.leaseTerm();
      lease.tokens += Number(granted);
      lease.lowWater = target >= 4 ? Math.floor(target / 2) : 0;
      lease.sharedRemaining = Number(remaining);
      lease.fullAt = answeredAt + Number(reset);
      lease.expiresAt = answeredAt + term;
      lease.renewAt = answeredAt + term / 2;
      lease.deniedUntil = lease.tokens > 0 ? 0 : answeredAt + Number(retryAfter);
      if (lease.tokens > 0) this.holding.add(key);
    } catch (error) {
      this.degrade(error);
    } finally {
      lease.inFlight = undefined;
    }
  }

  /** Unspent tokens of expired leases go back to the shared bucket. */
  private returnExpired(): void {
    if (this.holding.size === 0 || this.degraded) return;
    const now = Date.now();
    for (const key of this.holding) {
      const lease = this.leases.peek(key);
      if (lease === undefined || lease.tokens === 0) {
        this.holding.delete(key);
        continue;
      }
      if (now < lease.expiresAt || lease.inFlight !== undefined) continue;
      const unspent = lease.tokens;
      lease.tokens = 0;
      this.holding.delete(key);
      void this.giveBack(key, unspent);
    }
  }

  private async giveBack(key: string, tokens: number): Promise<void> {
    try {
      await this.script(this.redis!, 'return', this.prefix + key, String(tokens));
    } catch {
      // Lost tokens only make the limit stricter for a moment; no reason to degrade.
    }
  }

  private async script(redis: Redis, which: 'lease' | 'return', key: string, count: string): Promise<[number, string, string, string]> {
    const source = which === 'lease' ? LEASE_LUA : RETURN_LUA;
    const args = which === 'lease' ? [this.intervalMs, this.burst, count] : [this.intervalMs, count];
    let sha = which === 'lease' ? this.leaseSha : this.returnSha;
    if (sha !== undefined) {
      try {
        return (await redis.evalsha(sha, 1, key, ...args)) as [number, string, string, string];
      } catch (error) {
        if (!String((error as Error).message).includes('NOSCRIPT')) throw error;
      }
    }
    sha = String(await redis.script('LOAD', source));
    if (which === 'lease') this.leaseSha = sha;
    else this.returnSha = sha;
    return (await redis.evalsha(sha, 1, key, ...args)) as [number, string, string, string];
  }

  private takeLocally(key: string): RateDecision {
    if (this.redis !== undefined) this.fallbackCounter?.inc();
    return this.local.take(key);
  }

  private degrade(error: unknown): void {
    if (this.degraded || this.closed) return;
    this.degraded = true;
    this.degradedGauge?.set(1);
    this.options.log?.warn(
      { err: error instanceof Error ? error.message : String(error) },
      'rate limiting degraded to per-replica limits: Redis does not answer',
    );
    this.probe = setInterval(() => void this.tryRecover(), this.options.redisRetryMs ?? 1000);
    this.probe.unref();
  }

  private async tryRecover(): Promise<void> {
    if (this.redis === undefined || this.redis.status !== 'ready') return;
    try {
      await this.redis.ping();
    } catch {
      return;
    }
    if (!this.degraded) return;
    // Leases from before the outage are stale: start afresh from the shared bucket.
    this.leases.clear();
    this.lastLease = undefined;
    this.holding.clear();
    this.degraded = false;
    clearInterval(this.probe);
    this.probe = undefined;
    this.degradedGauge?.set(0);
    this.options.log?.info({}, 'rate limiting shared through Redis again');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probe !== undefined) clearInterval(this.probe);
    if (this.sweep !== undefined) clearInterval(this.sweep);
    if (this.redis !== undefined) {
      // Give back what this replica still holds, so a restart does not cost the others tokens.
      const now = Date.now();
      const pending: Array<Promise<void>> = [];
      if (!this.degraded && this.redis.status === 'ready') {
        for (const key of this.holding) {
          const lease = this.leases.peek(key);
          if (lease !== undefined && lease.tokens > 0 && now < lease.expiresAt) pending.push(this.giveBack(key, lease.tokens));
        }
      }
      await Promise.all(pending);
      this.redis.disconnect();
    }
  }
}

/** Requests in flight per key, bounded; local to the replica. */
export class ConcurrencyLimiter {
  private readonly inFlight = new Map<string, number>();

  constructor(readonly max: number) {}

  tryAcquire(key: string): boolean {
    const current = this.inFlight.get(key) ?? 0;
    if (current >= this.max) return false;
    this.inFlight.set(key, current + 1);
    return true;
  }

  release(key: string): void {
    const current = this.inFlight.get(key) ?? 0;
    if (current <= 1) this.inFlight.delete(key);
    else this.inFlight.set(key, current - 1);
  }

  count(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }
}
