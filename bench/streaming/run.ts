/**
 * Kafka door against REST for breast_cancer rows, in one run, on one throwaway broker.
 *
 *   node --import tsx bench/streaming/run.ts [--records 50000] [--rate 1000] [--seconds 10] [--concurrency 32] [--delivery exactly_once]
 *
 * One inferd process serves the model over REST and consumes the request topic through the
 * Kafka door (exactly-once by default); this process drives both:
 * - throughput: --records requests produced at once; records/s from the first send to the last
 *   answer; REST: closed loop with --concurrency requests in flight for --seconds.
 * - latency: --rate requests/s for --seconds on each side; end-to-end p50/p99 (Kafka: produce
 *   to the answer's arrival at a read_committed consumer; REST: request to response).
 * Needs the Kafka jars (scripts/setup/test-deps.sh) and Java 17. Numbers on a shared 2-core
 * machine are for comparing the two sides within one run.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Consumer, FetchIsolationLevels, Producer } from '@platformatic/kafka';
import { startKafka } from '../../test/support/kafka.js';
import { createTopics } from '../../test/streaming/kafka-clients.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODELS = resolve(ROOT, '..', 'shared', 'models');

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '50000' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '32' },
    delivery: { type: 'string', default: 'exactly_once' },
    partitions: { type: 'string', default: '2' },
  },
});
const records = Number(values.records);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(latencies: number[]): { p50: number; p99: number; max: number } {
  const s = [...latencies].sort((a, b) => a - b);
  return { p50: round(percentile(s, 50)), p99: round(percentile(s, 99)), max: round(s[s.length - 1] ?? NaN) };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

async function main(): Promise<void> {
  const broker = await startKafka();
  const dir = await mkdtemp(join(tmpdir(), 'inferd-bench-stream-'));
  const repository = join(dir, 'models');
  await cp(join(ROOT, 'examples', 'models', 'breast_cancer'), join(repository, 'breast_cancer'), { recursive: true });
  const rows = (await readFile(join(MODELS, 'breast_cancer', 'data', 'test.csv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(',').slice(0, 30).map(Number));
  const body = (i: number) => JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: rows[i % rows.length] }] });
  await createTopics(broker.bootstrap, ['bench-requests', 'bench-responses', 'bench-dead'], Number(values.partitions));

  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'streaming', 'fixtures', 'kafka-door-process.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      INFERD_TEST_CONFIG: JSON.stringify({
        model_repository: repository,
        logging: { level: 'silent', access_log: false },
        kafka: {
          enabled: true,
          brokers: [broker.bootstrap],
          group_id: 'bench',
          group_instance_id: 'bench-1',
          request_topics: ['bench-requests'],
          reply_topic: 'bench-responses',
          dead_letter_topic: 'bench-dead',
          delivery: values.delivery,
          lag_interval_ms: 0,
        },
      }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  while (!/consuming http=\d+/.test(out)) {
    if (child.exitCode !== null) throw new Error('the inferd process exited');
    await new Promise((r) => setTimeout(r, 50));
  }
  const httpPort = Number(/consuming http=(\d+)/.exec(out)![1]);
  const url = `http://127.0.0.1:${httpPort}/v2/models/breast_cancer/infer`;

  const producer = new Producer({ clientId: 'bench-producer', bootstrapBrokers: [broker.bootstrap], idempotent: true, retries: 5, maxInflights: 5 });
  const consumer = new Consumer({
    clientId: 'bench-reader',
    groupId: `bench-reader-${Date.now()}`,
    bootstrapBrokers: [broker.bootstrap],
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
    maxWaitTime: 20,
  });
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let answered = 0;
  let lastAnswer = 0;
  const stream = await consumer.consume({ topics: ['bench-responses'], mode: 'latest', autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED, maxWaitTime: 20 });
  stream.on('data', (m) => {
    let key: string | undefined;
    for (const [k, v] of m.headers) if (String(k) === 'x-correlation-id') key = String(v);
    const t = key !== undefined ? sentAt.get(key) : undefined;
    if (t !== undefined) {
      latencies.push(performance.now() - t);
      sentAt.delete(key!);
    }
    answered++;
    lastAnswer = performance.now();
  });
  await new Promise((r) => setTimeout(r, 1500));

  const send = async (from: number, count: number, tag: string) => {
    const now = performance.now();
    const messages = Array.from({ length: count }, (_, k) => {
      const id = `${tag}-${from + k}`;
      sentAt.set(id, now);
      return { topic: 'bench-requests', key: Buffer.from('breast_cancer'), value: Buffer.from(body(from + k)), headers: new Map([[Buffer.from('x-correlation-id'), Buffer.from(id)]]) };
    });
    await producer.send({ messages });
  };

  // Kafka throughput: everything at once.
  answered = 0;
  latencies.length = 0;
  const t0 = performance.now();
  for (let i = 0; i < records; i += 1000) await send(i, Math.min(1000, records - i), 'tput');
  while (answered < records && performance.now() - t0 < 300_000) await new Promise((r) => setTimeout(r, 20));
  const kafkaThroughput = { records, recordsPerSecond: Math.round(records / ((lastAnswer - t0) / 1000)), latencyMs: summary(latencies) };

  // Kafka latency at a fixed rate.
  answered = 0;
  latencies.length = 0;
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const end = performance.now() + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    const tick = performance.now();
    await send(sent, perTick, 'rate');
    sent += perTick;
    const wait = tickMs - (performance.now() - tick);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const drainUntil = performance.now() + 30_000;
  while (answered < sent && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
  const kafkaLatency = { rate, sent, answered, latencyMs: summary(latencies) };

  // REST throughput: closed loop.
  const restLat: number[] = [];
  let restDone = 0;
  const restEnd = performance.now() + seconds * 1000;
  const r0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = w;
      while (performance.now() < restEnd) {
        const t = performance.now();
        const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(i) });
        await r.arrayBuffer();
        restLat.push(performance.now() - t);
        restDone++;
        i += concurrency;
      }
    }),
  );
  const restThroughput = { requests: restDone, requestsPerSecond: Math.round(restDone / ((performance.now() - r0) / 1000)), concurrency, latencyMs: summary(restLat) };

  // REST latency at the same fixed rate (open loop).
  const restRateLat: number[] = [];
  const pending: Array<Promise<void>> = [];
  const rateEnd = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < rateEnd) {
    const tick = performance.now();
    for (let k = 0; k < perTick; k++) {
      const i = n++;
      pending.push(
        (async () => {
          const t = performance.now();
          const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(i) });
          await r.arrayBuffer();
          restRateLat.push(performance.now() - t);
        })(),
      );
    }
    const wait = tickMs - (performance.now() - tick);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(pending);
  const restLatency = { rate, sent: n, latencyMs: summary(restRateLat) };

  console.log(JSON.stringify({ delivery: values.delivery, kafkaThroughput, kafkaLatency, restThroughput, restLatency }, null, 2));
  await stream.close();
  await consumer.close(true);
  await producer.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await broker.stop();
  await rm(dir, { recursive: true, force: true });
}

await main();
