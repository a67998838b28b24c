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

/** One key's stored TAT, updated in place so a repeat request does not write the LRU. */
interface Cell {
  tat: number;
}

/** Per-process GCRA over a bounded LRU of keys (an evicted key has a full bucket anyway). */
export class LocalGcra {
  private readonly cells: LRUCache<string, Cell>;
  private readonly interval: number;
  private readonly tolerance: number;
  /** The last cell looked up: a run of requests from one key skips the LRU. */
  private lastKey: string | undefined;
  private lastCell: Cell | undefined;
  /** Time to a full bucket after the last admission of `admit` (ms). */
  admittedResetMs = 0;

  constructor(
    private readonly params: RateLimitParams,
    maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    this.interval = emissionIntervalMs(params);
    this.tolerance = this.interval * params.burst;
    this.cells = new LRUCache<string, Cell>({
      max: maxKeys,
      dispose: (cell) => {
        if (cell === this.lastCell) this.lastCell = undefined;
      },
    });
  }

  take(key: string): RateDecision {
    const cell = this.cellOf(key);
    const { decision, newTat } = gcraStep(cell.tat, this.now(), this.params);
    if (newTat !== undefined) cell.tat = newTat;
    return decision;
  }

  /**
   * `take` without a decision object: admits and returns the requests still admissible, or
   * returns -1 and changes nothing when refused (`take` then says when to retry).
   */
  admit(key: string): number {
    const cell = this.cellOf(key);
    const now = this.now();
    const start = cell.tat < now ? now : cell.tat;
    const newTat = start + this.interval;
    if (now < newTat - this.tolerance) return -1;
    cell.tat = newTat;
    this.admittedResetMs = newTat - now;
    return Math.floor((this.tolerance - (newTat - now)) / this.interval);
  }

  private cellOf(key: string): Cell {
    if (key === this.lastKey && this.lastCell !== undefined) return this.lastCell;
    let cell = this.cells.get(key);
    if (cell === undefined) {
      // A TAT in the past is a full bucket.
      cell = { tat: 0 };
      this.cells.set(key, cell);
    }
    this.lastKey = key;
    this.lastCell = cell;
    return cell;
  }
}
