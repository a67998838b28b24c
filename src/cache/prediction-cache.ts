/**
 * The prediction cache: an in-process LRU bounded by bytes in front of an optional Redis shared
 * by every replica. Concurrent misses of one key share one computation (single-flight), so a
 * hot key reaching a cold cache runs the model once. Redis is best effort: when it is down or
 * slow, the cache carries on with memory alone, logs the outage once and counts the errors;
 * callers never see it.
 */
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CounterFamily, GaugeFamily } from '../observability/instruments.js';
import { KEY_PREFIX, modelPrefix } from './key.js';

export interface PredictionCacheOptions {
  /** Bound of the in-process tier, in bytes of stored answers. */
  memoryBytes: number;
  /** `redis://host:port/db`; no shared tier without it. */
  redisUrl?: string;
  /** Bound on one Redis command; past it the cache answers from memory alone. */
  redisTimeoutMs: number;
  /**
   * Across replicas, one computes a missing answer while the others wait for it in Redis, up to
   * this long (the lock's lifetime); 0 turns that off (each replica computes its own misses).
   */
  sharedLockMs?: number;
  logger?: Logger;
  /** Where the cache's metrics are registered (the server's /metrics registry). */
  registry?: Registry;
}

function lockKey(key: string): string {
  return `${key}:computing`;
}

interface Stored {
  value: Buffer;
  model: string;
}

export class PredictionCache {
  private readonly memory: LRUCache<string, Stored>;
  private readonly redis: Redis | undefined;
  private readonly inFlight = new Map<string, Promise<Buffer | undefined>>();
  private redisHealthy = true;
  private closing = false;
  private readonly log: Logger | undefined;
  readonly metrics: {
    hits: CounterFamily;
    misses: CounterFamily;
    evictions: CounterFamily;
    coalesced: CounterFamily;
    bytes: GaugeFamily;
    entries: GaugeFamily;
    redisErrors: CounterFamily;
  };

  constructor(private readonly options: PredictionCacheOptions) {
    this.log = options.logger;
    const r = options.registry;
    this.metrics = {
      hits: new CounterFamily('inferd_cache_hits_total', 'Inferences answered from the prediction cache, by tier.', ['model', 'tier'], r),
      misses: new CounterFamily('inferd_cache_misses_total', 'Inferences the prediction cache could not answer.', ['model'], r),
      evictions: new CounterFamily('inferd_cache_evictions_total', 'Answers evicted from the in-process cache to stay within its byte bound.', [], r),
      coalesced: new CounterFamily('inferd_cache_coalesced_total', 'Misses that waited for an identical request already computing instead of running the model.', ['model'], r),
      bytes: new GaugeFamily('inferd_cache_bytes', 'Bytes of answers held by the in-process cache.', [], r),
      entries: new GaugeFamily('inferd_cache_entries', 'Answers held by the in-process cache.', [], r),
      redisErrors: new CounterFamily('inferd_cache_redis_errors_total', 'Redis commands of the prediction cache that failed or timed out (the cache then uses memory alone).', [], r),
    };
    const evictions = this.metrics.evictions.child();
    this.memory = new LRUCache<string, Stored>({
      maxSize: Math.max(1, options.memoryBytes),
      sizeCalculation: (s, key) => s.value.byteLength + key.length,
      // An answer larger than the whole bound is not kept.
      maxEntrySize: Math.max(1, options.memoryBytes),
      ttlAutopurge: false,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') evictions.inc();
      },
    });
    if (options.redisUrl) {
      this.redis = new Redis(options.redisUrl, {
        // Commands fail at once while disconnected instead of queueing behind an outage.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: options.redisTimeoutMs,
        connectTimeout: Math.max(500, options.redisTimeoutMs * 10),
        retryStrategy: (times) => Math.min(200 * times, 2000),
        lazyConnect: false,
      });
      this.redis.on('error', (error: Error) => this.redisFailed(error));
      // A dropped connection is an outage even before a command or a reconnect fails.
      this.redis.on('close', () => {
        if (!this.closing) this.redisFailed(new Error('the connection to Redis closed'));
      });
      // The shared tier never keeps a process alive by itself (the server's listeners do).
      this.redis.on('connect', () => (this.redis as unknown as { stream?: { unref?: () => void } }).stream?.unref?.());
      this.redis.on('ready', () => {
        if (!this.redisHealthy) this.log?.info('prediction cache: Redis is back; answers are shared again');
        this.redisHealthy = true;
      });
    }
  }

  /** Memory bytes in use (for the gauge and tests). */
  get memoryBytes(): number {
    return this.memory.calculatedSize;
  }

  get memoryEntries(): number {
    return this.memory.size;
  }

  /**
   * The cached answer of `key`, or the answer `compute` produces (stored with `ttlMs`, 0 = no
   * expiry). `compute` resolving undefined means "do not store" (a fallback answer). Concurrent
   * calls for one key share one `compute`; `onLookup` tells where the answer came from.
   */
  async getOrCompute(
    key: string,
    model: string,
    ttlMs: number,
    compute: () => Promise<Buffer | undefined>,
    onLookup: (lookup: 'memory' | 'redis' | 'coalesced' | 'miss') => void,
  ): Promise<Buffer | undefined> {
    const local = this.memory.get(key);
    if (local) {
      this.metrics.hits.child(model, 'memory').inc();
      onLookup('memory');
      return local.value;
    }
    const pending = this.inFlight.get(key);
    if (pending) {
      this.metrics.coalesced.child(model).inc();
      onLookup('coalesced');
      return pending;
    }
    const flight = this.lookupThenCompute(key, model, ttlMs, compute, onLookup);
    this.inFlight.set(key, flight);
    try {
      return await flight;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async lookupThenCompute(
    key: string,
    model: string,
    ttlMs: number,
    compute: () => Promise<Buffer | undefined>,
    onLookup: (lookup: 'memory' | 'redis' | 'coalesced' | 'miss') => void,
  ): Promise<Buffer | undefined> {
    const shared = await this.redisGet(key);
    if (shared) {
      this.remember(key, model, shared, ttlMs);
      this.metrics.hits.child(model, 'redis').inc();
      onLookup('redis');
      return shared;
    }
    // Another replica may be computing this answer: wait for it rather than compute it again.
    const lockMs = this.options.sharedLockMs ?? 0;
    const lock = lockMs > 0 ? await this.redisLock(key, lockMs) : 'none';
    if (lock === 'taken') {
      const waited = await this.waitForShared(key, lockMs);
      if (waited) {
        this.remember(key, model, waited, ttlMs);
        this.metrics.coalesced.child(model).inc();
        onLookup('coalesced');
        return waited;
      }
    }
    this.metrics.misses.child(model).inc();
    onLookup('miss');
    let storing: Promise<void> | undefined;
    try {
      const value = await compute();
      if (value !== undefined) {
        this.remember(key, model, value, ttlMs);
        storing = this.redisSet(key, value, ttlMs);
      }
      return value;
    } finally {
      // The lock goes once the answer is in Redis, so waiting replicas find it there.
      if (lock === 'held') {
        void (storing ?? Promise.resolve())
          .then(() => this.redis?.del(lockKey(key)))
          .catch((error: Error) => this.redisFailed(error));
      }
    }
  }

  /** 'held': this replica computes; 'taken': another one is; 'none': no shared tier now. */
  private async redisLock(key: string, lockMs: number): Promise<'held' | 'taken' | 'none'> {
    const redis = this.redis;
    if (!redis || redis.status !== 'ready') return 'none';
    try {
      const ok = await redis.set(lockKey(key), '1', 'PX', lockMs, 'NX');
      return ok === 'OK' ? 'held' : 'taken';
    } catch (error) {
      this.redisFailed(error as Error);
      return 'none';
    }
  }

  /** Polls for the answer another replica is computing; undefined when it gave up or failed. */
  private async waitForShared(key: string, lockMs: number): Promise<Buffer | undefined> {
    const redis = this.redis;
    const until = Date.now() + lockMs;
    let pause = 5;
    while (redis && redis.status === 'ready' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(50, pause * 2);
      try {
        const results = await redis.pipeline().getBuffer(key).exists(lockKey(key)).exec();
        const value = results?.[0]?.[1] as Buffer | null | undefined;
        if (value) return value;
        // The lock is gone and no answer was stored (it failed, or was not cacheable).
        if (results?.[1]?.[1] === 0) return undefined;
      } catch (error) {
        this.redisFailed(error as Error);
        return undefined;
      }
    }
    return undefined;
  }

  private remember(key: string, model: string, value: Buffer, ttlMs: number): void {
    this.memory.set(key, { value, model }, ttlMs > 0 ? { ttl: ttlMs } : {});
    this.metrics.bytes.child().set(this.memory.calculatedSize);
    this.metrics.entries.child().set(this.memory.size);
  }

  /** Drops every cached answer of `model` (all models when absent), in memory and in Redis. */
  async clear(model?: string): Promise<{ memory: number; redis: number }> {
    let memory = 0;
    const prefix = model === undefined ? KEY_PREFIX : modelPrefix(model);
    for (const key of [...this.memory.keys()]) {
      if (key.startsWith(prefix)) {
        this.memory.delete(key);
        memory++;
      }
    }
    this.metrics.bytes.child().set(this.memory.calculatedSize);
    this.metrics.entries.child().set(this.memory.size);
    let redis = 0;
    if (this.redis && this.redis.status === 'ready') {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) redis += await this.redis.unlink(...keys);
      } while (cursor !== '0');
    }
    return { memory, redis };
  }

  async close(): Promise<void> {
    this.closing = true;
    this.memory.clear();
    if (this.redis) this.redis.disconnect();
  }

  private async redisGet(key: string): Promise<Buffer | undefined> {
    const redis = this.redis;
    if (!redis || redis.status !== 'ready') return undefined;
    try {
      const value = await redis.getBuffer(key);
      return value ?? undefined;
    } catch (error) {
      this.redisFailed(error as Error);
      return undefined;
    }
  }

  private async redisSet(key: string, value: Buffer, ttlMs: number): Promise<void> {
    const redis = this.redis;
    if (!redis || redis.status !== 'ready') return;
    try {
      if (ttlMs > 0) await redis.set(key, value, 'PX', ttlMs);
      else await redis.set(key, value);
    } catch (error) {
      this.redisFailed(error as Error);
    }
  }

  private redisFailed(error: Error): void {
    this.metrics.redisErrors.child().inc();
    if (this.redisHealthy) {
      this.redisHealthy = false;
      this.log?.warn({ err: { message: error.message } }, 'prediction cache: Redis failed; answering from memory alone until it is back');
    }
  }
}
