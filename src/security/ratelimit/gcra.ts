/**
 * The generic cell rate algorithm: a token bucket stored as one number per key, the
 * "theoretical arrival time" (TAT) of the next request. Each admitted request pushes the TAT
 * forward by the emission interval T = 1/rate; a request is admitted while TAT - now stays
 * within the burst tolerance tau = burst * T. Unlike a fixed window it never lets 2x the limit
 * through at a window edge: over any interval of length d at most burst + d*rate get in.
 *
 * The same arithmetic runs in Redis (redis.ts, in Lua, with Redis's clock) and here (the local
 * fallback and single-replica mode).
 */
import { LRUCache } from 'lru-cache';

export interface RateLimitParams {
  /** Sustained requests per second. */
  ratePerSecond: number;
  /** Requests admitted at once after a quiet period. */
  burst: number;
}

export interface RateDecision {
  allowed: boolean;
  /** The bucket size. */
  limit: number;
  /** Requests that could still be admitted right now. */
  remaining: number;
  /** Milliseconds until a request would be admitted (0 when allowed). */
  retryAfterMs: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
}

export function emissionIntervalMs(params: RateLimitParams): number {
  return 1000 / params.ratePerSecond;
}

/** One GCRA step over a stored TAT; returns the decision and the TAT to store (when admitted). */
export function gcraStep(tat: number | undefined, now: number, params: RateLimitParams): { decision: RateDecision; newTat?: number } {
  const interval = emissionIntervalMs(params);
  const tolerance = interval * params.burst;
  const start = tat === undefined || tat < now ? now : tat;
  const newTat = start + interval;
  const allowAt = newTat - tolerance;
  if (now < allowAt) {
    return { decision: { allowed: false, limit: params.burst, remaining: 0, retryAfterMs: allowAt - now, resetMs: start - now } };
  }
  return {
    decision: { allowed: true, limit: params.burst, remaining: Math.floor((tolerance - (newTat - now)) / interval), retryAfterMs: 0, resetMs: newTat - now },
    newTat,
  };
}

/** Per-process GCRA over a bounded LRU of keys (an evicted key has a full bucket anyway). */
export class LocalGcra {
  private readonly tats: LRUCache<string, number>;

  constructor(
    private readonly params: RateLimitParams,
    maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    this.tats = new LRUCache<string, number>({ max: maxKeys });
  }

  take(key: string): RateDecision {
    const now = this.now();
    const { decision, newTat } = gcraStep(this.tats.get(key), now, this.params);
    if (newTat !== undefined) this.tats.set(key, newTat);
    return decision;
  }
}
