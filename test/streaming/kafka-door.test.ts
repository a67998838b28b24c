import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { kafkaDoorConfig, type KafkaDoorConfig } from '../../src/streaming/kafka/config.js';
import { KafkaDoor } from '../../src/streaming/kafka/door.js';
import type { InferdServer } from '../../src/server/index.js';
import { consoleHeader, readCommittedWithJavaClient, startKafka, type KafkaBroker } from '../support/kafka.js';
import { EXAMPLES, REPO_ROOT, SHARED_MODELS } from '../support/paths.js';
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
    makeRepository({
      breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
      // A deliberately slow model with a short queue, to make the queue deep.
      slow: {
        config: [
          'runtime: js',
          'max_batch_size: 4',
          'inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]',
          'outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]',
          'queue: { max_size: 16 }',
          'warmup: []',
        ].join('\n'),
        files: {
          '1/model.mjs': [
            'const pause = new Int32Array(new SharedArrayBuffer(4));',
            'export function predict({ x }) {',
            '  Atomics.wait(pause, 0, 0, 25);',
            "  return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data, (v) => v * 2) } };",
            '}',
          ].join('\n'),
        },
      },
    }),
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

describe('Kafka door encodings and delivery modes', () => {
  it('takes the binary tensor extension and answers in binary when asked, at least once without transactions', async () => {
    const name = 'binary';
    await createTopics(broker.bootstrap, [`${name}-requests`, `${name}-responses`, `${name}-dead`], 1);
    const door = new KafkaDoor({ config: doorConfig(name, { delivery: 'at_least_once' }), logger: pino({ level: 'silent' }) });
    await door.start(server.plane);
    try {
      const rows = 4;
      const features = Float32Array.from(golden.inputs['features']!.data.slice(0, rows * 30));
      const header = Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 30], parameters: { binary_data_size: features.byteLength } }],
          outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'label' }],
        }),
      );
      await sendRequests(broker.bootstrap, `${name}-requests`, [
        {
          key: 'breast_cancer',
          headers: { 'x-correlation-id': 'bin-1', 'inference-header-content-length': String(header.byteLength) },
          value: Buffer.concat([header, Buffer.from(features.buffer)]),
        },
      ]);
      const [answer] = await readCommitted(broker.bootstrap, `${name}-responses`, 1, { settleMs: 500 });
      expect(answer!.headers['x-correlation-id']).toBe('bin-1');
      expect(answer!.headers['content-type']).toBe('application/octet-stream');
      const jsonLength = Number(answer!.headers['inference-header-content-length']);
      const meta = JSON.parse(answer!.value.subarray(0, jsonLength).toString()) as { outputs: Array<{ name: string; data?: number[]; parameters?: { binary_data_size?: number } }> };
      const probabilities = meta.outputs.find((o) => o.name === 'probabilities')!;
      expect(probabilities.parameters?.binary_data_size).toBe(rows * 2 * 4);
      const bytes = answer!.value.subarray(jsonLength, jsonLength + rows * 8);
      const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      values.forEach((v, i) => expect(Math.abs(v - golden.outputs['probabilities']!.data[i]!)).toBeLessThan(1e-5));
      expect(meta.outputs.find((o) => o.name === 'label')!.data).toEqual(golden.outputs['label']!.data.slice(0, rows));
    } finally {
      await door.drain(Date.now() + 5000);
      await door.stop();
    }
  });

  it('pauses consumption while the model queue is deep and stays in its group', async () => {
    const name = 'pressure';
    await createTopics(broker.bootstrap, [`${name}-requests`, `${name}-responses`, `${name}-dead`], 2);
    const registry = new Registry();
    const door = new KafkaDoor({ config: doorConfig(name, { max_batch_records: 100, max_poll_interval_ms: 10_000, session_timeout_ms: 3000 }), registry, logger: pino({ level: 'silent' }) });
    await door.start(server.plane);
    try {
      const total = 300;
      await sendRequests(
        broker.bootstrap,
        `${name}-requests`,
        Array.from({ length: total }, (_, i) => ({ key: 'slow', headers: { 'x-correlation-id': `p-${i}` }, value: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [i] }] }) })),
      );
      // Wait until something has been answered, so the group has settled, then watch the generation.
      const firstAnswers = await readCommitted(broker.bootstrap, `${name}-responses`, 1, { settleMs: 0 });
      expect(firstAnswers.length).toBeGreaterThan(0);
      const generation = door.groupGeneration;
      const answers = await readCommitted(broker.bootstrap, `${name}-responses`, total, { settleMs: 1000 });
      expect(answers).toHaveLength(total);
      for (const a of answers) {
        const i = Number(a.headers['x-correlation-id']!.slice(2));
        expect((JSON.parse(a.value.toString()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data[0]).toBe(i * 2);
      }
      const metrics = await registry.metrics();
      // It paused (the queue of 16 filled up), nothing overflowed into dead letters, and no rebalance happened.
      expect(Number(/inferd_kafka_pauses_total (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
      expect(metrics).not.toMatch(/inferd_kafka_records_dead_lettered_total\{/);
      expect(metrics).not.toMatch(/outcome="abort"/);
      expect(door.groupGeneration).toBe(generation);
    } finally {
      await door.drain(Date.now() + 5000);
      await door.stop();
    }
  });
});

describe('Kafka door scaling out', () => {
  it('shares partitions with a second member and answers exactly once across the rebalances', async () => {
    const name = 'scale';
    const total = 3000;
    await createTopics(broker.bootstrap, [`${name}-requests`, `${name}-responses`, `${name}-dead`], 4);
    await sendRequests(
      broker.bootstrap,
      `${name}-requests`,
      Array.from({ length: total }, (_, i) => ({
        key: 'breast_cancer',
        partition: i % 4,
        headers: { 'x-correlation-id': `s-${i}` },
        value: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: goldenRow(i % 8) }] }),
      })),
    );
    const registries = [new Registry(), new Registry()];
    const doors = ['a', 'b'].map(
      (member, k) => new KafkaDoor({ config: doorConfig(name, { group_instance_id: `member-${member}`, max_batch_records: 50, session_timeout_ms: 3000 }), registry: registries[k], logger: pino({ level: 'silent' }) }),
    );
    await doors[0]!.start(server.plane);
    await new Promise((r) => setTimeout(r, 300));
    // A second member joins (rebalance), then the first leaves (rebalance again), all mid-stream.
    await doors[1]!.start(server.plane);
    await new Promise((r) => setTimeout(r, 1500));
    await doors[0]!.drain(Date.now() + 5000);
    await doors[0]!.stop();
    try {
      const answered = async () => new Set((await readCommitted(broker.bootstrap, `${name}-responses`, total, { timeoutMs: 3000, settleMs: 0 })).map((a) => a.headers['x-correlation-id'])).size;
      const until = Date.now() + 60_000;
      while ((await answered()) < total && Date.now() < until);
      const answers = await readCommittedWithJavaClient(broker.bootstrap, `${name}-responses`, 3000);
      const ids = answers.map((a) => consoleHeader(a, 'x-correlation-id'));
      expect(new Set(ids).size).toBe(total);
      expect(ids).toHaveLength(total);
      const outs = await Promise.all(registries.map((r) => r.metrics()));
      const answeredBy = outs.map((m) => Number(/inferd_kafka_records_out_total\{topic="scale-responses"\} (\d+)/.exec(m)?.[1] ?? 0));
      // Both members answered part of the stream.
      expect(answeredBy[0]).toBeGreaterThan(0);
      expect(answeredBy[1]).toBeGreaterThan(0);
    } finally {
      await doors[1]!.drain(Date.now() + 5000);
      await doors[1]!.stop();
    }
  });
});

describe('Kafka door dead letters', () => {
  it('sends each malformed record to the dead-letter topic once, with reason, origin and error class', async () => {
    const name = 'dlq';
    await createTopics(broker.bootstrap, [`${name}-requests`, `${name}-responses`, `${name}-dead`], 1);
    const registry = new Registry();
    const door = new KafkaDoor({ config: doorConfig(name), registry, logger: pino({ level: 'silent' }) });
    await door.start(server.plane);
    try {
      const good = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: goldenRow(0) }] });
      await sendRequests(broker.bootstrap, `${name}-requests`, [
        { key: 'breast_cancer', headers: { 'x-correlation-id': 'ok-1' }, value: good },
        { key: 'breast_cancer', headers: { 'x-correlation-id': 'bad-json' }, value: '{"inputs": [' },
        { key: 'breast_cancer', headers: { 'x-correlation-id': 'bad-shape' }, value: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }) },
        { key: 'no_such_model', headers: { 'x-correlation-id': 'bad-model' }, value: good },
        { headers: { 'x-correlation-id': 'no-model' }, value: good },
        { key: 'breast_cancer', headers: { 'x-correlation-id': 'expired', 'inferd-deadline': String(Date.now() - 1000) }, value: good },
        { key: 'breast_cancer', headers: { 'x-correlation-id': 'ok-2' }, value: good },
      ]);
      const dead = await readCommitted(broker.bootstrap, `${name}-dead`, 5, { settleMs: 1500 });
      const answers = await readCommitted(broker.bootstrap, `${name}-responses`, 2, { settleMs: 500 });
      expect(answers.map((a) => a.headers['x-correlation-id']).sort()).toEqual(['ok-1', 'ok-2']);
      expect(dead.map((d) => d.headers['x-correlation-id']).sort()).toEqual(['bad-json', 'bad-model', 'bad-shape', 'expired', 'no-model']);
      const byId = new Map(dead.map((d) => [d.headers['x-correlation-id'], d]));
      const json = byId.get('bad-json')!;
      expect(json.value.toString()).toBe('{"inputs": [');
      expect(json.headers['inferd-error-code']).toBe('INVALID_ARGUMENT');
      expect(json.headers['inferd-error-class']).toBe('InvalidInputError');
      expect(json.headers['inferd-error-reason']).toMatch(/JSON/);
      expect(json.headers['inferd-source-topic']).toBe('dlq-requests');
      expect(json.headers['inferd-source-partition']).toBe('0');
      expect(json.headers['inferd-source-offset']).toBe('1');
      expect(byId.get('bad-shape')!.headers['inferd-error-reason']).toMatch(/features|shape|30/);
      expect(byId.get('bad-model')!.headers['inferd-error-code']).toBe('NOT_FOUND');
      expect(byId.get('no-model')!.headers['inferd-error-reason']).toMatch(/names no model/);
      expect(byId.get('expired')!.headers['inferd-error-code']).toBe('DEADLINE_EXCEEDED');
      const metrics = await registry.metrics();
      expect(metrics).toMatch(/inferd_kafka_records_dead_lettered_total\{code="INVALID_ARGUMENT"\} 3/);
      expect(metrics).toMatch(/inferd_kafka_records_in_total\{topic="dlq-requests"\} 7/);
    } finally {
      await door.drain(Date.now() + 5000);
      await door.stop();
    }
  });
});

/** The test rows of breast_cancer and the labels the model itself gives them (onnxruntime-node, no server). */
async function referenceRows(): Promise<{ rows: number[][]; labels: number[] }> {
  const text = await readFile(join(SHARED_MODELS, 'breast_cancer', 'data', 'test.csv'), 'utf8');
  const rows = text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',').slice(0, 30).map(Number));
  const session = await ort.InferenceSession.create(join(SHARED_MODELS, 'breast_cancer', '1', 'model.onnx'));
  const result = await session.run({ features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 30]) });
  const labels = Array.from(result['label']!.data as BigInt64Array, Number);
  await session.release();
  return { rows, labels };
}

interface DoorProcess {
  child: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

/** The last `answered N` progress line of a door process. */
function answeredBy(door: DoorProcess): number {
  const all = [...door.output().matchAll(/answered (\d+)/g)];
  return all.length === 0 ? 0 : Number(all[all.length - 1]![1]);
}

async function startDoorProcess(overrides: Record<string, unknown>): Promise<DoorProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test', 'streaming', 'fixtures', 'kafka-door-process.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, INFERD_TEST_CONFIG: JSON.stringify(overrides), INFERD_TEST_PROGRESS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = Date.now();
  while (!out.includes('consuming')) {
    if (child.exitCode !== null || Date.now() - started > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`the door process did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, exited, output: () => out };
}

describe('Kafka door exactly-once under faults', () => {
  it('answers 10,000 records exactly once while the consuming process is SIGKILLed and restarted', async () => {
    const name = 'faults';
    const total = 10_000;
    const malformed = 40;
    await createTopics(broker.bootstrap, [`${name}-requests`, `${name}-responses`, `${name}-dead`], 3);
    const { rows, labels } = await referenceRows();
    const requests = Array.from({ length: total }, (_, i) => ({
      key: `k-${i}`,
      headers: { 'inferd-model': 'breast_cancer', 'x-correlation-id': `c-${i}` },
      value: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: rows[i % rows.length] }] }),
    }));
    // Malformed records spread through the stream.
    const bad = Array.from({ length: malformed }, (_, j) => ({
      key: `bad-${j}`,
      headers: { 'inferd-model': 'breast_cancer', 'x-correlation-id': `bad-${j}` },
      value: j % 2 === 0 ? 'not json' : JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] }),
    }));
    const all = [...requests];
    bad.forEach((b, j) => all.splice(Math.floor(((j + 1) * total) / (malformed + 1)) + j, 0, b));
    await sendRequests(broker.bootstrap, `${name}-requests`, all);

    const overrides = {
      model_repository: repository,
      logging: { level: 'silent' },
      kafka: {
        enabled: true,
        brokers: [broker.bootstrap],
        group_id: `g-${name}`,
        // Static membership and a stable transactional id: a restarted process fences its predecessor at once.
        group_instance_id: 'door-1',
        request_topics: [`${name}-requests`],
        reply_topic: `${name}-responses`,
        dead_letter_topic: `${name}-dead`,
        max_batch_records: 200,
        session_timeout_ms: 6000,
        heartbeat_interval_ms: 500,
        max_poll_interval_ms: 20_000,
        transaction_timeout_ms: 10_000,
        lag_interval_ms: 0,
      },
    };
    const kills = 4;
    const killedAt: number[] = [];
    let before = 0;
    let door = await startDoorProcess(overrides);
    for (let k = 0; k < kills; k++) {
      // A random point in the stream (about every 2,000 answers): between two transactions or
      // in the middle of one. Answers counted by killed processes may include a few that were
      // never committed, so the count is approximate; it only chooses the moment.
      const target = 1000 + k * 2000 + Math.floor(Math.random() * 1500);
      const until = Date.now() + 60_000;
      while (before + answeredBy(door) < target && Date.now() < until) {
        if (door.child.exitCode !== null) throw new Error(`the door process exited on its own:\n${door.output()}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      door.child.kill('SIGKILL');
      await door.exited;
      before += answeredBy(door);
      killedAt.push(before);
      door = await startDoorProcess(overrides);
    }
    try {
      // Progress: wait until every input has an answer (this client's read_committed filter is only
      // used to wait; the verdict comes from Kafka's own Java client below).
      const waitUntil = Date.now() + 90_000;
      for (;;) {
        const seenSoFar = new Set((await readCommitted(broker.bootstrap, `${name}-responses`, total, { timeoutMs: 5000, settleMs: 0 })).map((a) => a.headers['x-correlation-id']));
        if (seenSoFar.size >= total || Date.now() > waitUntil) break;
      }
      const [answers, dead] = await Promise.all([
        readCommittedWithJavaClient(broker.bootstrap, `${name}-responses`, 3000),
        readCommittedWithJavaClient(broker.bootstrap, `${name}-dead`, 3000),
      ]);
      // Every kill landed in the middle of the stream.
      expect(killedAt).toHaveLength(kills);
      for (const at of killedAt) expect(at).toBeLessThan(total);
      const seen = new Map<string, number>();
      for (const a of answers) {
        const id = consoleHeader(a, 'x-correlation-id')!;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      const duplicates = [...seen].filter(([, n]) => n > 1);
      expect(duplicates.slice(0, 5)).toEqual([]);
      if (seen.size !== total) {
        const missing = requests.filter((r) => !seen.has(r.headers['x-correlation-id'])).map((r) => r.key);
        console.log('missing', missing.length, missing.slice(0, 20), door.output().slice(-6000));
      }
      expect(seen.size).toBe(total);
      expect(answers).toHaveLength(total);
      let wrong = 0;
      for (const a of answers) {
        const i = Number(consoleHeader(a, 'x-correlation-id')!.slice(2));
        const body = JSON.parse(a.value) as { outputs: Array<{ name: string; data: number[] }> };
        if (body.outputs.find((o) => o.name === 'label')!.data[0] !== labels[i % rows.length]) wrong++;
      }
      expect(wrong).toBe(0);
      expect(dead.map((d) => consoleHeader(d, 'x-correlation-id')).sort()).toEqual(bad.map((b) => b.key).sort());
    } finally {
      door.child.kill('SIGTERM');
      await Promise.race([door.exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (door.child.exitCode === null) door.child.kill('SIGKILL');
    }
  }, 180_000);
});
