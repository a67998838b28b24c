/**
 * The Kafka front door: consumes request topics as a member of a consumer group, runs every
 * record through the data plane (concurrently, so the dynamic batcher batches them), and
 * answers on a reply topic, or a dead-letter topic when a record cannot be answered.
 *
 * Exactly-once (the default): a batch of records is consumed, inferred, its responses and dead
 * letters produced, and its offsets committed in ONE transaction of an idempotent,
 * transactional producer. Readers with `isolation.level=read_committed` see each answer once
 * whatever crashes: an aborted or unfinished transaction leaves the offsets uncommitted and the
 * records are consumed again. Zombies are fenced twice: by the transactional id (a restarted
 * instance with the same id bumps the producer epoch) and by the group generation the offsets
 * are committed with (a member that lost its partitions in a rebalance cannot commit them).
 * At-least-once: responses are produced, then the offsets committed; a crash in between
 * answers some records twice.
 *
 * Back-pressure: consumption pauses while any loaded model's queue is deeper than
 * pause_queue_fraction of its bound and resumes below resume_queue_fraction. Heartbeats run
 * on their own timer, so a paused or slow consumer stays in its group; a batch that cannot
 * finish within half of max_poll_interval_ms (the group's rebalance timeout) is aborted and its
 * records consumed again, so a slow model never makes the member miss a rebalance.
 */
import {
  Consumer,
  FetchIsolationLevels,
  Producer,
  type Message,
  type MessagesStream,
} from '@platformatic/kafka';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { DataPlane } from '../../pipeline/dataplane.js';
import { DeadlineExceededError, InferdError } from '../../core/errors.js';
import type { RequestContext } from '../../core/types.js';
import type { FrontDoor } from '../../server/front-door.js';
import { inferOnPlane, type InferencePlane } from '../plane.js';
import { defaultTransactionalId, type KafkaDoorConfig } from './config.js';
import { KafkaMetrics } from './metrics.js';
import { deadLetterRecord, decodeRequestRecord, HEADER, isTransient, responseRecord, type InboundRecord, type OutboundRecord } from './records.js';

type Record_ = Message<Buffer, Buffer, Buffer, Buffer>;

/** How deep the model queues are: the largest queued/bound fraction over the loaded models. */
export type QueueDepth = () => number;

export interface KafkaDoorOptions {
  config: KafkaDoorConfig;
  logger?: Logger;
  /** The server's Prometheus registry; the door's metrics are added to it. */
  registry?: Registry;
  /** Defaults to the fullest queue of the data plane's loaded models. */
  queueDepth?: QueueDepth;
}

/** A batch that must be consumed again: the transaction is aborted, nothing is committed. */
class RetryBatch extends Error {}

interface Outcome {
  record: Record_;
  out: OutboundRecord;
  dead: boolean;
  code?: string;
}

const BUFFER_LIMIT_FACTOR = 2;

export class KafkaDoor implements FrontDoor {
  readonly name = 'kafka';
  readonly metrics: KafkaMetrics;
  private readonly config: KafkaDoorConfig;
  private readonly logger: Logger | undefined;
  private plane: InferencePlane | undefined;
  private queueDepth: QueueDepth | undefined;
  private producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  private buffer: Record_[] = [];
  /** Next offset to process per topic:partition in the current stream; older records are duplicates. */
  private nextOffset = new Map<string, bigint>();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private abandon = false;
  private pausedForQueues = false;
  private bufferFull = false;
  private streamBroken: Error | undefined;
  private fatal: Error | undefined;
  private readonly transactionalId: string;

  constructor(options: KafkaDoorOptions) {
    this.config = options.config;
    this.logger = options.logger?.child({ door: 'kafka' });
    this.metrics = new KafkaMetrics(options.registry);
    this.queueDepth = options.queueDepth;
    this.transactionalId = defaultTransactionalId(this.config);
  }

  /** The consumer group generation this member is in (changes on every rebalance). */
  get groupGeneration(): number | undefined {
    return this.consumer?.generationId;
  }

  get exactlyOnce(): boolean {
    return this.config.delivery === 'exactly_once';
  }

  /** Set when the door stopped consuming for good (fenced by another instance with its transactional id). */
  get failure(): Error | undefined {
    return this.fatal;
  }

  async start(plane: DataPlane): Promise<void> {
    try {
      await this.connect(plane);
    } catch (error) {
      // Nothing half-open is left behind when the broker cannot be reached or refuses.
      await this.stop();
      throw error;
    }
  }

  private async connect(plane: DataPlane): Promise<void> {
    this.plane = plane;
    this.queueDepth ??= KafkaDoor.queueDepthOf(plane);
    const c = this.config;
    const brokers = c.brokers;
    this.producer = new Producer({
      clientId: `${c.client_id}-producer`,
      bootstrapBrokers: brokers,
      idempotent: true,
      // Idempotence keeps retries from duplicating records; more than one retry is required.
      retries: 5,
      // The client sends its request timeout as the transaction timeout of InitProducerId.
      ...(this.exactlyOnce ? { transactionalId: this.transactionalId, timeout: c.transaction_timeout_ms } : {}),
    });
    if (this.exactlyOnce) {
      // InitProducerId before consuming: the broker finishes (commits or aborts) whatever
      // transaction a predecessor with this id left open, so the offsets read next are settled.
      // No expected id/epoch (-1): "this id, whatever its current epoch"; the client's default
      // (0, 0) makes the broker answer PRODUCER_FENCED once the id has been used before.
      const fence = await this.producer.beginTransaction({ producerId: -1n, producerEpoch: -1 });
      await fence.cancel();
    }
    this.consumer = new Consumer({
      clientId: `${c.client_id}-consumer`,
      bootstrapBrokers: brokers,
      groupId: c.group_id,
      ...(c.group_instance_id ? { groupInstanceId: c.group_instance_id } : {}),
      sessionTimeout: c.session_timeout_ms,
      heartbeatInterval: c.heartbeat_interval_ms,
      rebalanceTimeout: c.max_poll_interval_ms,
      autocommit: false,
      // Requests written by transactional producers count only once committed.
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      maxWaitTime: 200,
    });
    this.consumer.on('consumer:group:join', (payload) => {
      this.logger?.info({ generation: payload.generationId, assignments: payload.assignments }, 'kafka group joined');
    });
    this.consumer.on('consumer:lag', (lag) => {
      for (const [topic, partitions] of lag) partitions.forEach((value, partition) => this.metrics.lag.child(topic, String(partition)).set(Number(value)));
    });
    this.consumer.on('consumer:lag:error', (error) => this.logger?.debug({ err: error }, 'kafka lag measurement failed'));
    await this.openStream();
    if (c.lag_interval_ms > 0) this.consumer.startLagMonitoring({ topics: c.request_topics }, c.lag_interval_ms);
    this.loop = this.run();
    this.logger?.info(
      { topics: c.request_topics, group: c.group_id, delivery: c.delivery, ...(this.exactlyOnce ? { transactionalId: this.transactionalId } : {}) },
      'kafka door consuming',
    );
  }

  /** Takes queue depth from a data plane's model manager (the server passes its plane to start()). */
  static queueDepthOf(plane: DataPlane): QueueDepth {
    return () => {
      let deepest = 0;
      for (const v of plane.models.serving.loaded()) deepest = Math.max(deepest, v.queueSize / v.config.queue.max_size);
      return deepest;
    };
  }

  async drain(deadline: number): Promise<void> {
    this.stopping = true;
    this.stream?.pause();
    this.wake?.();
    if (!this.loop) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.loop.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      // The batch in flight is not committed: it is consumed again by whoever owns the partitions next.
      this.abandon = true;
      this.logger?.warn('kafka drain deadline passed; the batch in flight will be consumed again');
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abandon = true;
    this.wake?.();
    this.consumer?.stopLagMonitoring();
    const stream = this.stream;
    this.stream = undefined;
    await stream?.close().catch(() => undefined);
    // Leaving the group hands the partitions over (a static member keeps them until its session times out).
    const consumer = this.consumer;
    const producer = this.producer;
    if (consumer) await new Promise<void>((resolve) => consumer.close(true, () => resolve()));
    if (producer) await new Promise<void>((resolve) => producer.close(true, () => resolve()));
    await this.loop?.catch(() => undefined);
  }

  private async openStream(): Promise<void> {
    const consumer = this.consumer!;
    const c = this.config;
    this.buffer = [];
    this.nextOffset.clear();
    this.streamBroken = undefined;
    const stream = await consumer.consume({
      topics: c.request_topics,
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
      sessionTimeout: c.session_timeout_ms,
      heartbeatInterval: c.heartbeat_interval_ms,
      rebalanceTimeout: c.max_poll_interval_ms,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      maxWaitTime: 200,
    });
    this.stream = stream;
    this.bufferFull = false;
    stream.on('data', (record: Record_) => {
      if (this.stream !== stream) return;
      this.buffer.push(record);
      if (this.buffer.length >= this.config.max_batch_records * BUFFER_LIMIT_FACTOR && !this.bufferFull) {
        this.bufferFull = true;
        stream.pause();
      }
      this.wake?.();
    });
    stream.on('error', (error: Error) => {
      if (this.stream !== stream) return;
      this.logger?.warn({ err: error }, 'kafka stream failed; reopening from the committed offsets');
      this.streamBroken = error;
      this.wake?.();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = undefined;
    });
  }

  private setPaused(paused: boolean): void {
    if (paused === this.pausedForQueues) return;
    this.pausedForQueues = paused;
    this.metrics.paused.child().set(paused ? 1 : 0);
    if (paused) {
      this.stream?.pause();
      this.metrics.pauses.child().inc();
      this.logger?.debug('kafka consumption paused: model queue deep');
    } else {
      if (!this.bufferFull) this.stream?.resume();
      this.logger?.debug('kafka consumption resumed');
    }
  }

  /** Waits while the model queues are deep (heartbeats go on meanwhile), at most until `until`. */
  private async applyBackPressure(until = Infinity): Promise<void> {
    const c = this.config;
    const depth = this.queueDepth ?? (() => 0);
    if (depth() >= c.pause_queue_fraction) {
      this.setPaused(true);
      while (!this.abandon && Date.now() < until && depth() > c.resume_queue_fraction) await delay(2);
      this.setPaused(false);
    }
  }

  /** The next batch: waits for a first record, then lingers briefly for more. */
  private async takeBatch(): Promise<Record_[]> {
    const c = this.config;
    if (this.buffer.length === 0) await this.sleep(100);
    if (this.buffer.length === 0 || this.stopping) return [];
    // A plain delay, not sleep(): new records must not cut the linger short.
    if (this.buffer.length < c.max_batch_records && c.batch_linger_ms > 0) await delay(c.batch_linger_ms);
    if (this.stopping) return [];
    const taken = this.buffer.splice(0, c.max_batch_records);
    if (this.bufferFull && this.buffer.length < c.max_batch_records) {
      this.bufferFull = false;
      if (!this.pausedForQueues) this.stream?.resume();
    }
    const generation = this.consumer!.generationId;
    const batch: Record_[] = [];
    for (const record of taken) {
      // Fetched before a rebalance: the partition may be someone else's now. Start over from the
      // committed offsets rather than trust what the stream fetched around the rebalance.
      const consumerMeta = (record.metadata as { consumer?: { generationId?: number } }).consumer;
      if (consumerMeta?.generationId !== undefined && consumerMeta.generationId !== generation) {
        throw new RetryBatch('records fetched before a rebalance; consuming from the committed offsets');
      }
      const key = `${record.topic}:${record.partition}`;
      const next = this.nextOffset.get(key);
      if (next !== undefined && record.offset < next) continue;
      this.nextOffset.set(key, record.offset + 1n);
      batch.push(record);
    }
    return batch;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        if (this.streamBroken) throw this.streamBroken;
        await this.applyBackPressure();
        const batch = await this.takeBatch();
        if (batch.length === 0) continue;
        await this.process(batch);
        failures = 0;
      } catch (error) {
        if (this.stopping) break;
        if (isFenced(error)) {
          this.fatal = error as Error;
          this.logger?.error({ err: error }, 'kafka producer fenced by another instance with the same transactional id; this door stops consuming');
          break;
        }
        failures++;
        const backoff = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
        this.logger?.warn({ err: error, backoffMs: backoff }, 'kafka batch not committed; consuming it again');
        await this.reopen(backoff);
      }
    }
  }

  private async reopen(backoffMs: number): Promise<void> {
    const old = this.stream;
    this.stream = undefined;
    this.buffer = [];
    await old?.close().catch(() => undefined);
    await this.sleep(backoffMs);
    if (this.stopping) return;
    try {
      await this.openStream();
    } catch (error) {
      this.streamBroken = error as Error;
    }
  }

  private async process(batch: Record_[]): Promise<void> {
    const budgetEnd = Date.now() + this.config.max_poll_interval_ms / 2;
    const pending: Array<Promise<Outcome>> = [];
    for (const record of batch) {
      // Records enter the data plane only while the model queues have room, so this door never overflows them.
      await this.applyBackPressure(budgetEnd);
      if (this.abandon || Date.now() > budgetEnd) {
        await Promise.allSettled(pending);
        throw new RetryBatch('the batch could not be admitted within half of max_poll_interval_ms');
      }
      const outcome = this.handle(record, budgetEnd);
      outcome.catch(() => undefined);
      pending.push(outcome);
    }
    const outcomes = await Promise.all(pending);
    if (this.abandon) throw new RetryBatch('the door is stopping');
    if (Date.now() > budgetEnd) throw new RetryBatch('the batch took longer than half of max_poll_interval_ms');
    const messages = outcomes.map((o) => toMessage(o.out));
    // The offset to commit per partition is the last record's (the batch is in offset order per partition).
    const last = new Map<string, Record_>();
    for (const record of batch) last.set(`${record.topic}:${record.partition}`, record);
    if (this.exactlyOnce) await this.commitTransaction(messages, [...last.values()]);
    else await this.produceThenCommit(messages, [...last.values()]);
    const now = Date.now();
    for (const o of outcomes) {
      if (o.dead) this.metrics.deadLettered.child(o.code ?? 'INTERNAL').inc();
      else this.metrics.recordsOut.child(this.config.reply_topic).inc();
      this.metrics.endToEnd.child().observe((now - Number(o.record.timestamp)) / 1000);
    }
  }

  private async commitTransaction(messages: ProducedMessage[], lastRecords: Record_[]): Promise<void> {
    const producer = this.producer!;
    let tx: Awaited<ReturnType<typeof producer.beginTransaction>> | undefined;
    try {
      tx = await producer.beginTransaction();
      if (messages.length > 0) await tx.send({ messages });
      await tx.addConsumer(this.consumer!);
      for (const record of lastRecords) await tx.addOffset(record);
      if (this.abandon) throw new RetryBatch('the door is stopping');
      await tx.commit();
      this.metrics.transactions.child('commit').inc();
    } catch (error) {
      this.metrics.transactions.child('abort').inc();
      if (tx && !tx.completed) {
        await tx.abort().catch(async () => {
          await tx!.cancel().catch(() => undefined);
        });
      }
      throw error;
    }
  }

  private async produceThenCommit(messages: ProducedMessage[], lastRecords: Record_[]): Promise<void> {
    if (messages.length > 0) await this.producer!.send({ messages });
    if (this.abandon) throw new RetryBatch('the door is stopping');
    await this.consumer!.commit({
      offsets: lastRecords.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset + 1n, leaderEpoch: -1 })),
    });
  }

  /** One record: its response, or its dead letter; throws RetryBatch for errors worth a retry. */
  private async handle(record: Record_, budgetEnd: number): Promise<Outcome> {
    const c = this.config;
    this.metrics.recordsIn.child(record.topic).inc();
    const inbound = record as unknown as InboundRecord;
    const dead = (error: unknown): Outcome => {
      const code = error instanceof InferdError ? error.code : 'INTERNAL';
      this.logger?.debug({ err: error, topic: record.topic, partition: record.partition, offset: String(record.offset) }, 'kafka record dead-lettered');
      return { record, out: deadLetterRecord(c.dead_letter_topic, inbound, error), dead: true, code };
    };
    let decoded;
    try {
      decoded = decodeRequestRecord(inbound, c.default_model);
    } catch (error) {
      return dead(error);
    }
    if (decoded.deadline !== undefined && decoded.deadline <= Date.now()) return dead(new DeadlineExceededError('the record deadline passed before it was consumed'));
    const ctx: RequestContext & { model: string } = {
      requestId: decoded.correlationId,
      requestIdKey: HEADER.correlationId,
      protocol: 'kafka',
      door: 'kafka',
      model: decoded.model,
      ...(decoded.version !== undefined ? { version: decoded.version } : {}),
      deadline: decoded.deadline ?? budgetEnd,
      header: (name: string) => decoded.headers.get(name),
    };
    try {
      const response = await inferOnPlane(this.plane!, ctx, decoded.request);
      return { record, out: responseRecord(c.reply_topic, inbound, decoded, response, ctx.responseHeaders), dead: false };
    } catch (error) {
      if (isTransient(error)) throw new RetryBatch(`record ${record.topic}/${record.partition}/${record.offset}: ${(error as Error).message}`, { cause: error });
      // Our own time budget ran out, not the caller's deadline: consume the record again.
      if (error instanceof InferdError && error.code === 'DEADLINE_EXCEEDED' && decoded.deadline === undefined) {
        throw new RetryBatch('the batch time budget ran out', { cause: error });
      }
      return dead(error);
    }
  }
}

interface ProducedMessage {
  topic: string;
  key?: Buffer;
  value: Buffer;
  headers: Map<Buffer, Buffer>;
}

/** Header names go out as bytes: the producer has no serialisers. */
function toMessage(record: OutboundRecord): ProducedMessage {
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of Object.entries(record.headers)) headers.set(Buffer.from(name), value);
  return { topic: record.topic, ...(record.key !== undefined ? { key: record.key } : {}), value: record.value, headers };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isFenced(error: unknown): boolean {
  const e = error as { findBy?: (key: string, value: unknown) => unknown };
  return typeof e?.findBy === 'function' && Boolean(e.findBy('producerFenced', true));
}
