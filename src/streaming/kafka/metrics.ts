/**
 * The Kafka door's Prometheus metrics, registered in the server's registry (Metrics.registry)
 * with the same instruments as the rest of inferd. Labels are bounded: topics come from the
 * configuration, partitions from the broker, outcomes from a fixed set.
 */
import type { Registry } from 'prom-client';
import { CounterFamily, GaugeFamily, HistogramFamily } from '../../observability/instruments.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class KafkaMetrics {
  readonly lag: GaugeFamily;
  readonly recordsIn: CounterFamily;
  readonly recordsOut: CounterFamily;
  readonly deadLettered: CounterFamily;
  readonly transactions: CounterFamily;
  readonly endToEnd: HistogramFamily;
  readonly paused: GaugeFamily;
  readonly pauses: CounterFamily;

  /** Without a registry the metrics are kept but not exported (tests read them directly). */
  constructor(registry?: Registry) {
    this.lag = new GaugeFamily('inferd_kafka_consumer_lag', 'Records behind the end of each assigned request partition.', ['topic', 'partition'], registry);
    this.recordsIn = new CounterFamily('inferd_kafka_records_in_total', 'Request records consumed.', ['topic'], registry);
    this.recordsOut = new CounterFamily('inferd_kafka_records_out_total', 'Response records produced (and committed, with transactions).', ['topic'], registry);
    this.deadLettered = new CounterFamily('inferd_kafka_records_dead_lettered_total', 'Request records sent to the dead-letter topic, by error code.', ['code'], registry);
    this.transactions = new CounterFamily('inferd_kafka_transactions_total', 'Transactions ended, by outcome (commit or abort).', ['outcome'], registry);
    this.endToEnd = new HistogramFamily(
      'inferd_kafka_end_to_end_seconds',
      'From the request record timestamp to its response being committed.',
      [],
      LATENCY_BUCKETS,
      registry,
    );
    this.paused = new GaugeFamily('inferd_kafka_consumption_paused', '1 while consumption is paused because a model queue is deep.', [], registry);
    this.pauses = new CounterFamily('inferd_kafka_pauses_total', 'Times consumption paused because a model queue was deep.', [], registry);
  }
}
