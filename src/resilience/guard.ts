/**
 * The resilience policies of one model version, built with cockatiel from its config's
 * `resilience` section and composed outermost first:
 *
 *   bulkhead → retry (exponential backoff, jitter, budget) → circuit breaker → timeout → call
 *
 * The bulkhead bounds the calls in progress (retries included) and their queue; the retry only
 * repeats failures that are worth repeating (UNAVAILABLE: the model or its upstream could not
 * take the call) and only within the budget; the breaker counts failures and timeouts of single
 * attempts over a time window; the timeout bounds one attempt. Inferences are pure reads of a
 * model, so repeating one is safe.
 */
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CircuitState,
  ExponentialBackoff,
  SamplingBreaker,
  TaskCancelledError,
  TimeoutStrategy,
  bulkhead,
  circuitBreaker,
  decorrelatedJitterGenerator,
  handleWhen,
  retry,
  timeout,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import { DeadlineExceededError, InferdError, OverloadedError, UnavailableError } from '../core/errors.js';
import type { ModelConfig } from '../models/config.js';
import { RetryBudget } from './budget.js';
import type { ResilienceMetrics } from './metrics.js';

export type ResilienceConfig = NonNullable<ModelConfig['resilience']>;

export const STATE_NAMES: Record<CircuitState, string> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** Failures worth another attempt: the model, or the server it lives in, could not take the call. */
export function isRetryable(error: unknown): boolean {
  return error instanceof InferdError && error.code === 'UNAVAILABLE';
}

/** Failures that count against the circuit: the callee is down, failing or slow — not the caller's fault. */
export function isCalleeFailure(error: unknown): boolean {
  if (error instanceof TaskCancelledError) return true;
  return error instanceof InferdError && (error.code === 'UNAVAILABLE' || error.code === 'DEADLINE_EXCEEDED' || error.code === 'INTERNAL');
}

export class VersionGuard {
  private readonly bulkhead: BulkheadPolicy | undefined;
  private readonly retry: RetryPolicy | undefined;
  private readonly breaker: CircuitBreakerPolicy | undefined;
  private readonly timeout: TimeoutPolicy | undefined;
  private readonly budget: RetryBudget | undefined;

  constructor(
    readonly model: string,
    readonly version: string,
    private readonly config: ResilienceConfig,
    private readonly metrics: ResilienceMetrics,
    private readonly logger?: Logger,
  ) {
    const c = config;
    if (c.bulkhead) this.bulkhead = bulkhead(c.bulkhead.max_concurrent, c.bulkhead.max_queue);
    if (c.timeout_ms !== undefined) this.timeout = timeout(c.timeout_ms, TimeoutStrategy.Aggressive);
    if (c.circuit_breaker) {
      const b = c.circuit_breaker;
      const breaker = circuitBreaker(handleWhen(isCalleeFailure), {
        halfOpenAfter: b.half_open_after_ms,
        breaker: new SamplingBreaker({ threshold: b.failure_ratio, duration: b.window_ms, minimumRps: b.min_requests_per_second }),
      });
      this.breaker = breaker;
      metrics.circuitState.child(model, version).set(CircuitState.Closed);
      breaker.onStateChange((state) => {
        metrics.circuitState.child(model, version).set(state);
        const line = { model, version, state: STATE_NAMES[state] };
        if (state === CircuitState.Open) this.logger?.warn(line, 'circuit breaker opened: calls fail fast (or fall back) until a probe succeeds');
        else this.logger?.info(line, `circuit breaker ${STATE_NAMES[state]}`);
      });
    }
    if (c.retry) {
      const r = c.retry;
      const budget = new RetryBudget(r.budget_ratio, r.budget_min_per_second);
      this.budget = budget;
      const policy = retry(
        handleWhen((error) => {
          if (!isRetryable(error)) return false;
          if (budget.canRetry()) return true;
          metrics.budgetExhausted.child(model).inc();
          return false;
        }),
        {
          maxAttempts: r.max_attempts,
          backoff: new ExponentialBackoff({ initialDelay: r.initial_delay_ms, maxDelay: r.max_delay_ms, generator: decorrelatedJitterGenerator }),
        },
      );
      policy.onRetry(() => {
        budget.spend();
        metrics.retries.child(model).inc();
      });
      this.retry = policy;
    }
  }

  /** The breaker's state (for tests and the admin view). */
  get circuitState(): string {
    return this.breaker ? STATE_NAMES[this.breaker.state] : 'none';
  }

  /**
   * Runs `attempt` under the policies. `attempt` receives the deadline of this attempt (absolute
   * ms, when a timeout applies) so queued work is dropped when the caller has stopped waiting.
   */
  async run<T>(attempt: (deadline: number | undefined) => Promise<T>): Promise<T> {
    this.budget?.request();
    const timeoutMs = this.config.timeout_ms;
    let call = (): Promise<T> => attempt(timeoutMs === undefined ? undefined : Date.now() + timeoutMs);
    const t = this.timeout;
    if (t) {
      const inner = call;
      call = () => t.execute(() => inner());
    }
    const b = this.breaker;
    if (b) {
      const inner = call;
      call = () => b.execute(() => inner());
    }
    const r = this.retry;
    if (r) {
      const inner = call;
      call = () => r.execute(() => inner());
    }
    const h = this.bulkhead;
    if (h) {
      const inner = call;
      call = () => h.execute(() => inner());
    }
    try {
      return await call();
    } catch (error) {
      throw this.translate(error);
    }
  }

  private translate(error: unknown): unknown {
    const what = `model '${this.model}' version ${this.version}`;
    if (error instanceof BrokenCircuitError) {
      const seconds = Math.max(1, Math.ceil((this.config.circuit_breaker?.half_open_after_ms ?? 1000) / 1000));
      return new UnavailableError(`${what}: circuit breaker open after repeated failures; calls are refused until a probe succeeds`, seconds);
    }
    if (error instanceof BulkheadRejectedError) {
      this.metrics.bulkheadRejected.child(this.model).inc();
      return new OverloadedError(`${what}: ${this.config.bulkhead?.max_concurrent} calls in progress and ${this.config.bulkhead?.max_queue} waiting (resilience.bulkhead); try again shortly`, 1);
    }
    if (error instanceof TaskCancelledError) {
      return new DeadlineExceededError(`${what} did not answer within ${this.config.timeout_ms} ms (resilience.timeout_ms)`);
    }
    return error;
  }
}
