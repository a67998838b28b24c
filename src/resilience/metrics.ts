/** Metrics of the resilience policies, registered on the server's /metrics registry. */
import type { Registry } from 'prom-client';
import { CounterFamily, GaugeFamily } from '../observability/instruments.js';

export interface ResilienceMetrics {
  circuitState: GaugeFamily;
  retries: CounterFamily;
  budgetExhausted: CounterFamily;
  bulkheadRejected: CounterFamily;
  fallbacks: CounterFamily;
}

export function resilienceMetrics(registry?: Registry): ResilienceMetrics {
  return {
    circuitState: new GaugeFamily('inferd_circuit_state', 'Circuit breaker state per model version: 0 closed, 1 open, 2 half-open, 3 isolated.', ['model', 'version'], registry),
    retries: new CounterFamily('inferd_retries_total', 'Inference attempts repeated after a retryable failure.', ['model'], registry),
    budgetExhausted: new CounterFamily('inferd_retry_budget_exhausted_total', 'Retries not made because the retry budget was spent.', ['model'], registry),
    bulkheadRejected: new CounterFamily('inferd_bulkhead_rejected_total', 'Inferences refused with 503 because the bulkhead and its queue were full.', ['model'], registry),
    fallbacks: new CounterFamily('inferd_fallback_answers_total', 'Answers given by a fallback, by primary model and reason.', ['model', 'reason'], registry),
  };
}
