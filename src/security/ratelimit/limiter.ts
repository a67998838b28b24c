/**
 * The rate limiter every replica shares: GCRA in one Lua script, so the read-compute-write is
 * atomic in Redis and uses Redis's clock (replicas' clocks need not agree). When Redis cannot
 * answer (down, or slower than the timeout) the limiter degrades to a local GCRA with the same
 * parameters: requests are still limited, per replica, never failed and never let through
 * unchecked. A gauge and one log line say so; a probe brings it back when Redis returns.
 */
import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import { LocalGcra, type RateDecision, type RateLimitParams, emissionIntervalMs } from './gcra.js';

// KEYS[1] the bucket; ARGV[1] emission interval ms, ARGV[2] burst. Returns
// {allowed, remaining, retry_after_ms, reset_ms} (numbers as strings: Lua numbers would be truncated).
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, '0', tostring(allow_at - now), tostring(tat - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, tostring(math.floor((tolerance - (new_tat - now)) / interval)), '0', tostring(new_tat - now)}
`;

export interface LimiterLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export interface SharedRateLimiterOptions extends RateLimitParams {
  /** `redis://host:port/db`; absent: local limiting only. */
  redisUrl?: string;
  keyPrefix?: string;
  /** A Redis answer slower than this counts as a failure. Default 50 ms. */
  redisTimeoutMs?: number;
  /** Probe interval while degraded. Default 1000 ms. */
  redisRetryMs?: number;
  log?: LimiterLog;
  metrics?: Registry;
}

export type LimiterMode = 'shared' | 'local' | 'degraded';

export class SharedRateLimiter {
  private readonly local: LocalGcra;
  private readonly redis: Redis | undefined;
  private readonly prefix: string;
  private readonly intervalMs: string;
  private readonly burst: string;
  private sha: string | undefined;
  private degraded = false;
  private probe: NodeJS.Timeout | undefined;
  private readonly degradedGauge: Gauge | undefined;
  private readonly fallbackCounter: Counter | undefined;
  private closed = false;

  constructor(private readonly options: SharedRateLimiterOptions) {
    this.local = new LocalGcra(options);
    this.prefix = options.keyPrefix ?? 'inferd:rl:';
    this.intervalMs = String(emissionIntervalMs(options));
    this.burst = String(options.burst);
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
      this.degradedGauge.set(0);
    }
    if (options.redisUrl !== undefined) {
      this.redis = new Redis(options.redisUrl, {
        // Fail fast instead of queueing: a decision must not wait for a reconnect.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: options.redisTimeoutMs ?? 50,
        connectTimeout: 1000,
        retryStrategy: (times) => Math.min(times * 100, 2000),
        lazyConnect: false,
      });
      // Connection errors are reported through the degraded state, not as unhandled events.
      this.redis.on('error', () => undefined);
    }
  }

  get mode(): LimiterMode {
    if (this.redis === undefined) return 'local';
    return this.degraded ? 'degraded' : 'shared';
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

  async take(key: string): Promise<RateDecision> {
    if (this.redis === undefined || this.degraded) return this.takeLocally(key);
    if (this.redis.status !== 'ready') {
      this.degrade(new Error(`redis connection is ${this.redis.status}`));
      return this.takeLocally(key);
    }
    try {
      return await this.takeShared(this.redis, this.prefix + key);
    } catch (error) {
      this.degrade(error);
      return this.takeLocally(key);
    }
  }

  private takeLocally(key: string): RateDecision {
    if (this.redis !== undefined) this.fallbackCounter?.inc();
    return this.local.take(key);
  }

  private async takeShared(redis: Redis, key: string): Promise<RateDecision> {
    let reply: unknown;
    if (this.sha !== undefined) {
      try {
        reply = await redis.evalsha(this.sha, 1, key, this.intervalMs, this.burst);
      } catch (error) {
        if (!String((error as Error).message).includes('NOSCRIPT')) throw error;
        this.sha = undefined;
      }
    }
    if (reply === undefined) {
      this.sha = String(await redis.script('LOAD', GCRA_LUA));
      reply = await redis.evalsha(this.sha, 1, key, this.intervalMs, this.burst);
    }
    const [allowed, remaining, retryAfter, reset] = reply as [number, string, string, string];
    return { allowed: allowed === 1, limit: this.options.burst, remaining: Number(remaining), retryAfterMs: Number(retryAfter), resetMs: Number(reset) };
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
    this.degraded = false;
    clearInterval(this.probe);
    this.probe = undefined;
    this.degradedGauge?.set(0);
    this.options.log?.info({}, 'rate limiting shared through Redis again');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probe !== undefined) clearInterval(this.probe);
    if (this.redis !== undefined) this.redis.disconnect();
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
