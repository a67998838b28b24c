/** Kafka clients the streaming tests use around the door: topics, request producer, committed reader. */
import { Admin, Consumer, FetchIsolationLevels, Producer } from '@platformatic/kafka';

export async function createTopics(bootstrap: string, topics: string[], partitions: number): Promise<void> {
  const admin = new Admin({ clientId: 'test-admin', bootstrapBrokers: [bootstrap] });
  try {
    await admin.createTopics({ topics, partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
}

export interface RequestToSend {
  key?: string;
  value: Buffer | string;
  headers?: Record<string, string>;
  partition?: number;
}

export async function sendRequests(bootstrap: string, topic: string, requests: RequestToSend[]): Promise<void> {
  const producer = new Producer({ clientId: 'test-requests', bootstrapBrokers: [bootstrap], idempotent: true, retries: 5 });
  try {
    for (let i = 0; i < requests.length; i += 1000) {
      await producer.send({
        messages: requests.slice(i, i + 1000).map((r) => ({
          topic,
          ...(r.key !== undefined ? { key: Buffer.from(r.key) } : {}),
          value: Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value),
          headers: new Map(Object.entries(r.headers ?? {}).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
          ...(r.partition !== undefined ? { partition: r.partition } : {}),
        })),
      });
    }
  } finally {
    await producer.close();
  }
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: string | undefined;
  value: Buffer;
  headers: Record<string, string>;
}

/**
 * Reads a topic from the beginning with read_committed until `count` records arrived (or the
 * timeout passed), then keeps reading for `settleMs` more to catch any extra (duplicate) record.
 */
export async function readCommitted(bootstrap: string, topic: string, count: number, options: { timeoutMs?: number; settleMs?: number } = {}): Promise<ReadRecord[]> {
  const consumer = new Consumer({
    clientId: 'test-reader',
    groupId: `reader-${topic}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    bootstrapBrokers: [bootstrap],
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
    maxWaitTime: 200,
    // Whole transactions in one fetch, so their abort markers come with them.
    maxBytes: 64 * 1024 * 1024,
    maxBytesPerPartition: 64 * 1024 * 1024,
  });
  const out: ReadRecord[] = [];
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let settleUntil = Infinity;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (Date.now() > deadline || Date.now() > settleUntil) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    stream.on('data', (m) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of m.headers) headers[String(k)] = v === undefined ? '' : Buffer.from(v).toString('utf8');
      out.push({ topic: m.topic, partition: m.partition, offset: m.offset, key: m.key?.toString('utf8'), value: m.value ?? Buffer.alloc(0), headers });
      if (out.length >= count && settleUntil === Infinity) settleUntil = Date.now() + (options.settleMs ?? 1000);
    });
  });
  await stream.close();
  await consumer.close(true);
  return out;
}
