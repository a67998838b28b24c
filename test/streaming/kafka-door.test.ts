import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { kafkaDoorConfig, type KafkaDoorConfig } from '../../src/streaming/kafka/config.js';
import { KafkaDoor } from '../../src/streaming/kafka/door.js';
import type { InferdServer } from '../../src/server/index.js';
import { startKafka, type KafkaBroker } from '../support/kafka.js';
import { EXAMPLES, SHARED_MODELS } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { createTopics, readCommitted, sendRequests } from './kafka-clients.js';

interface Golden {
  inputs: Record<string, { shape: number[]; data: number[] }>;
  outputs: Record<string, { shape: number[]; data: number[] }>;
}

let broker: KafkaBroker;
let server: InferdServer;
let repository: string;
let golden: Golden;

beforeAll(async () => {
  [broker, repository, golden] = await Promise.all([
    startKafka(),
    makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } }),
    readFile(join(SHARED_MODELS, 'breast_cancer', 'golden.json'), 'utf8').then((t) => JSON.parse(t) as Golden),
  ]);
  ({ server } = await startInProcess(repository));
}, 120_000);

afterAll(async () => {
  await server?.shutdown(5000);
  await broker?.stop();
});

function doorConfig(name: string, overrides: Partial<KafkaDoorConfig> = {}): KafkaDoorConfig {
  return kafkaDoorConfig({
    enabled: true,
    brokers: [broker.bootstrap],
    group_id: `g-${name}`,
    request_topics: [`${name}-requests`],
    reply_topic: `${name}-responses`,
    dead_letter_topic: `${name}-dead`,
    session_timeout_ms: 6000,
    heartbeat_interval_ms: 500,
    max_poll_interval_ms: 20_000,
    transaction_timeout_ms: 10_000,
    lag_interval_ms: 500,
    ...overrides,
  });
}

function goldenRow(i: number): number[] {
  return golden.inputs['features']!.data.slice(i * 30, i * 30 + 30);
}

describe('Kafka door', () => {
  it('answers breast_cancer rows with the golden outputs, exactly once, with correlation ids', async () => {
    const name = 'roundtrip';
    await createTopics(broker.bootstrap, [`${name}-requests`, `${name}-responses`, `${name}-dead`], 2);
    const registry = new Registry();
    const door = new KafkaDoor({ config: doorConfig(name), registry, logger: pino({ level: 'silent' }) });
    await door.start(server.plane);
    try {
      const rows = golden.inputs['features']!.shape[0]!;
      await sendRequests(
        broker.bootstrap,
        `${name}-requests`,
        Array.from({ length: rows }, (_, i) => ({
          key: `row-${i}`,
          headers: { 'inferd-model': 'breast_cancer', 'x-correlation-id': `corr-${i}` },
          value: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: goldenRow(i) }] }),
        })),
      );
      const answers = await readCommitted(broker.bootstrap, `${name}-responses`, rows, { settleMs: 1500 });
      expect(answers).toHaveLength(rows);
      for (const answer of answers) {
        const i = Number(answer.headers['x-correlation-id']!.slice('corr-'.length));
        expect(answer.key).toBe(`row-${i}`);
        expect(answer.headers['inferd-model']).toBe('breast_cancer');
        const body = JSON.parse(answer.value.toString()) as { outputs: Array<{ name: string; data: number[] }> };
        const probabilities = body.outputs.find((o) => o.name === 'probabilities')!.data;
        const label = body.outputs.find((o) => o.name === 'label')!.data;
        const want = golden.outputs['probabilities']!.data.slice(i * 2, i * 2 + 2);
        expect(Math.abs(probabilities[0]! - want[0]!)).toBeLessThan(1e-5);
        expect(Math.abs(probabilities[1]! - want[1]!)).toBeLessThan(1e-5);
        expect(label[0]).toBe(golden.outputs['label']!.data[i]);
      }
      const metrics = await registry.metrics();
      expect(metrics).toMatch(/inferd_kafka_records_out_total\{topic="roundtrip-responses"\} 8/);
      expect(metrics).toMatch(/inferd_kafka_transactions_total\{outcome="commit"\} \d+/);
      expect(metrics).toMatch(/inferd_kafka_end_to_end_seconds_count 8/);
    } finally {
      await door.drain(Date.now() + 5000);
      await door.stop();
    }
  });
});
