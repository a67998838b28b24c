import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { defaultTransactionalId, kafkaDoorConfig, kafkaDoorConfigOf } from '../../src/streaming/kafka/config.js';
import { KafkaDoor } from '../../src/streaming/kafka/door.js';
import type { DataPlane } from '../../src/pipeline/dataplane.js';
import { freePort } from '../support/server.js';

const base = { brokers: ['127.0.0.1:9092'], request_topics: ['req'], reply_topic: 'res', dead_letter_topic: 'dlq' };

describe('kafka door configuration', () => {
  it('is off by default and read from the kafka: block when enabled', () => {
    expect(kafkaDoorConfigOf(loadConfig({ env: {}, overrides: {} }))).toBeUndefined();
    const config = kafkaDoorConfigOf(loadConfig({ env: {}, overrides: { kafka: { enabled: true, brokers: ['k:9092'], group_instance_id: 'a' } } }))!;
    expect(config).toMatchObject({ brokers: ['k:9092'], request_topics: ['inferd-requests'], reply_topic: 'inferd-responses', delivery: 'exactly_once', max_batch_records: 500 });
    expect(defaultTransactionalId(config)).toBe('inferd-a');
  });

  it('names the problem in a bad configuration', () => {
    expect(() => kafkaDoorConfig({ ...base, brokers: [] })).toThrow(/kafka.brokers/);
    expect(() => kafkaDoorConfig({ ...base, reply_topic: 'req' })).toThrow(/must not be request topics/);
    expect(() => kafkaDoorConfig({ ...base, pause_queue_fraction: 0.2, resume_queue_fraction: 0.5 })).toThrow(/resume_queue_fraction/);
    expect(() => kafkaDoorConfig({ ...base, session_timeout_ms: 600_000 })).toThrow(/session_timeout_ms/);
    expect(() => loadConfig({ env: {}, overrides: { kafka: { enabled: true, delivery: 'twice' } } })).toThrow(/delivery/);
    expect(() => loadConfig({ env: {}, overrides: { kafka: { enabled: true, topic: 'x' } } })).toThrow(/topic/);
  });
});

describe('kafka door start-up', () => {
  it('fails start() when no broker answers, leaving nothing open', async () => {
    const port = await freePort();
    const door = new KafkaDoor({ config: kafkaDoorConfig({ ...base, brokers: [`127.0.0.1:${port}`] }) });
    await expect(door.start({ models: { loaded: () => [] } } as unknown as DataPlane)).rejects.toThrow();
    await door.stop();
  }, 30_000);
});
