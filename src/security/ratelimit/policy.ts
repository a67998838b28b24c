/**
 * The rate-limit policy for inference: one bucket per identity (and per model when
 * configured), plus a cap on requests in flight per identity. Every answer carries
 * `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; a refusal is 429 /
 * RESOURCE_EXHAUSTED with `Retry-After`. Runs after authentication, so the key is the
 * authenticated subject, not something the caller can vary freely.
 */
import { RateLimitedError } from '../../core/errors.js';
import type { InferenceRequest, InferenceResponse, RequestContext } from '../../core/types.js';
import type { NextInfer, Policy } from '../../pipeline/types.js';
import type { RateDecision } from './gcra.js';
import type { ConcurrencyLimiter, SharedRateLimiter } from './limiter.js';

export interface RateLimitPolicyOptions {
  limiter: SharedRateLimiter;
  concurrency?: ConcurrencyLimiter;
  perModel?: boolean;
}

function seconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}

/** Writes the RateLimit-* (and, on a refusal, Retry-After) headers of `decision` into `headers`. */
export function setRateLimitHeaders(headers: Record<string, string>, decision: RateDecision): void {
  headers['ratelimit-limit'] = String(decision.limit);
  headers['ratelimit-remaining'] = String(decision.remaining);
  headers['ratelimit-reset'] = String(seconds(decision.resetMs));
  if (!decision.allowed) headers['retry-after'] = String(Math.max(1, seconds(decision.retryAfterMs)));
}

/** Bucket keys of identity and model are built once per pair, up to this many. */
const MAX_MODEL_KEYS = 10_000;

export class RateLimitPolicy implements Policy {
  readonly name = 'rate-limit';
  /** The header values that stay the same from one answer to the next, as strings made once. */
  private readonly limitText: string;
  private resetSeconds = -1;
  private resetText = '0';
  private readonly modelKeys = new Map<string, Map<string, string>>();
  private modelKeyCount = 0;

  constructor(private readonly options: RateLimitPolicyOptions) {
    this.limitText = String(options.limiter.limit);
  }

  // Not async: a request spending a leased token passes through without a Redis call, an extra
  // promise or a decision object.
  infer(ctx: RequestContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const subject = ctx.identity?.subject ?? 'anonymous';
    const key = this.options.perModel === true && ctx.model !== undefined ? this.modelKey(subject, ctx.model) : subject;
    const limiter = this.options.limiter;
    if (this.options.concurrency === undefined) {
      const remaining = limiter.spendHeld(key);
      if (remaining >= 0) {
        const headers = (ctx.responseHeaders ??= {});
        headers['ratelimit-limit'] = this.limitText;
        headers['ratelimit-remaining'] = String(remaining);
        headers['ratelimit-reset'] = this.reset(limiter.heldResetMs);
        return next(ctx, request);
      }
    }
    const decision = limiter.takeNow(key);
    if (decision === undefined) return limiter.takeFromNextLease(key).then((d) => this.admit(ctx, request, next, subject, d));
    return this.admit(ctx, request, next, subject, decision);
  }

  /** The reset header's text; it changes at most once a second for a busy identity. */
  private reset(ms: number): string {
    const s = seconds(ms);
    if (s !== this.resetSeconds) {
      this.resetSeconds = s;
      this.resetText = String(s);
    }
    return this.resetText;
  }

  private modelKey(subject: string, model: string): string {
    let byModel = this.modelKeys.get(subject);
    if (byModel === undefined) {
      if (this.modelKeyCount >= MAX_MODEL_KEYS) {
        this.modelKeys.clear();
        this.modelKeyCount = 0;
      }
      byModel = new Map();
      this.modelKeys.set(subject, byModel);
    }
    let key = byModel.get(model);
    if (key === undefined) {
      key = `${subject}|${model}`;
      byModel.set(model, key);
      this.modelKeyCount += 1;
    }
    return key;
  }

  private admit(ctx: RequestContext, request: InferenceRequest, next: NextInfer, subject: string, decision: RateDecision): Promise<InferenceResponse> {
    ctx.responseHeaders ??= {};
    setRateLimitHeaders(ctx.responseHeaders, decision);
    if (!decision.allowed) {
      return Promise.reject(new RateLimitedError('rate limit exceeded; retry later', Math.max(1, seconds(decision.retryAfterMs))));
    }
    const concurrency = this.options.concurrency;
    if (concurrency === undefined) return next(ctx, request);
    if (!concurrency.tryAcquire(subject)) {
      ctx.responseHeaders['retry-after'] = '1';
      return Promise.reject(new RateLimitedError(`too many concurrent requests (limit ${concurrency.max}); retry later`, 1));
    }
    let running: Promise<InferenceResponse>;
    try {
      running = next(ctx, request);
    } catch (error) {
      concurrency.release(subject);
      return Promise.reject(error);
    }
    return running.finally(() => concurrency.release(subject));
  }
}
