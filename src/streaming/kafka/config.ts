/** The Kafka door's settings, as the `kafka:` block of the server configuration holds them. */
import os from 'node:os';
import type { ServerConfig } from '../../config/schema.js';

export type KafkaDelivery = 'exactly_once' | 'at_least_once';

export interface KafkaDoorConfig {
  enabled: boolean;
  /** host:port of one or more brokers. */
  brokers: string[];
  client_id: string;
  group_id: string;
  /** Static membership: a restarted process takes its seat back without a rebalance. */
  group_instance_id?: string;
  request_topics: string[];
  reply_topic: string;
  dead_letter_topic: string;
  /** exactly_once: produce and commit offsets in one transaction; at_least_once: produce, then commit. */
  delivery: KafkaDelivery;
  /**
   * Transactional id of this process (exactly_once). Stable across restarts of the same
   * instance so that a restarted process fences its predecessor's open transaction.
   */
  transactional_id?: string;
  /** Model for records that name none in their headers or key. */
  default_model?: string;
  /** Records taken into one transaction at most. */
  max_batch_records: number;
  /** How long a batch waits for more records after its first one. */
  batch_linger_ms: number;
  /** The group's rebalance timeout; a batch that cannot finish well within it is aborted. */
  max_poll_interval_ms: number;
  session_timeout_ms: number;
  heartbeat_interval_ms: number;
  /** Transactions left open longer than this (a crashed process) are aborted by the broker. */
  transaction_timeout_ms: number;
  /** Consumption pauses when a model's queue is this full (fraction of its queue.max_size)... */
  pause_queue_fraction: number;
  /** ...and resumes when it has drained to this fraction. */
  resume_queue_fraction: number;
  /** How often consumer lag is measured for the metrics; 0 turns it off. */
  lag_interval_ms: number;
}

export const KAFKA_DEFAULTS: Omit<KafkaDoorConfig, 'brokers' | 'request_topics' | 'reply_topic' | 'dead_letter_topic'> = {
  enabled: false,
  client_id: 'inferd',
  group_id: 'inferd',
  delivery: 'exactly_once',
  max_batch_records: 500,
  batch_linger_ms: 5,
  max_poll_interval_ms: 300_000,
  session_timeout_ms: 30_000,
  heartbeat_interval_ms: 3_000,
  transaction_timeout_ms: 60_000,
  pause_queue_fraction: 0.8,
  resume_queue_fraction: 0.3,
  lag_interval_ms: 5_000,
};

export function kafkaDoorConfig(partial: Partial<KafkaDoorConfig> & Pick<KafkaDoorConfig, 'brokers' | 'request_topics' | 'reply_topic' | 'dead_letter_topic'>): KafkaDoorConfig {
  const config: KafkaDoorConfig = { ...KAFKA_DEFAULTS, ...partial };
  if (config.brokers.length === 0) throw new Error('kafka.brokers: at least one host:port is required');
  if (config.request_topics.length === 0) throw new Error('kafka.request_topics: at least one topic is required');
  if (config.request_topics.includes(config.reply_topic) || config.request_topics.includes(config.dead_letter_topic)) {
    throw new Error('kafka.reply_topic and kafka.dead_letter_topic must not be request topics (the door would consume its own answers)');
  }
  if (!(config.resume_queue_fraction < config.pause_queue_fraction)) throw new Error('kafka.resume_queue_fraction must be below kafka.pause_queue_fraction');
  if (config.session_timeout_ms > config.max_poll_interval_ms) throw new Error('kafka.session_timeout_ms must not exceed kafka.max_poll_interval_ms');
  return config;
}

/**
 * The transactional id when none is configured. With a group_instance_id it is the same after a
 * restart, so the new process fences its predecessor's open transaction at once; without one it
 * is unique to the process and a crashed process's transaction is aborted by the broker after
 * transaction_timeout_ms.
 */
export function defaultTransactionalId(config: KafkaDoorConfig): string {
  return config.transactional_id ?? `${config.group_id}-${config.group_instance_id ?? `${os.hostname()}-${process.pid}`}`;
}

/** The door's settings from the server configuration, or undefined when the door is off. */
export function kafkaDoorConfigOf(server: Pick<ServerConfig, 'kafka'>): KafkaDoorConfig | undefined {
  const k = server.kafka;
  if (!k.enabled) return undefined;
  return kafkaDoorConfig(k);
}
