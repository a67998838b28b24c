/**
 * The prediction cache in real servers: one entry for the same tensor over REST JSON, REST
 * binary and gRPC; a hot-key burst runs the model once; two replicas share answers through a
 * real Redis; Redis killed mid-test costs no request; a new version never serves the old one's
 * answers; the admin endpoint clears.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/index.js';
import type { CachePolicy } from '../../src/cache/policy.js';
import type { InferenceResponse } from '../../src/core/types.js';
import { callContext } from '../../src/pipeline/context.js';
import type { InferdServer } from '../../src/server/index.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { makeRepository, postJson, startInProcess } from '../support/server.js';
import { call, connect, type Clients } from '../server/grpc/fixture.js';

/** y = x * factor, counting nothing itself: executions are read from the version's statistics. */
const scaleModel = (factor: number) => `
export function predict({ x }) {
  const y = new Float32Array(x.data.length);
  for (let i = 0; i < y.length; i++) y[i] = x.data[i] * ${factor};
  return { y: { datatype: 'FP32', shape: x.shape, data: y } };
}
`;

const CONFIG = `
runtime: js
max_batch_size: 8
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
dynamic_batching: { max_queue_delay_microseconds: 0 }
cache: { ttl_seconds: 60 }
`;

let redis: RedisServer;
let repo: string;
const servers: InferdServer[] = [];

function cacheOf(server: InferdServer): CachePolicy {
  return server.plane.policies.find((p) => p.name === 'cache') as CachePolicy;
}

async function start(overrides: Record<string, unknown> = {}): Promise<{ server: InferdServer; url: string }> {
  const started = await startInProcess(repo, { cache: { redis_url: redis.url, redis_timeout_ms: 200 }, ...overrides });
  servers.push(started.server);
  // Wait until the shared tier is connected, so the test is about sharing, not connecting.
  const deadline = Date.now() + 5000;
  while ((cacheOf(started.server).cache as unknown as { redis?: { status: string } }).redis?.status !== 'ready' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return started;
}

function statsOf(server: InferdServer, model: string, version = '1') {
  return server.manager.serving.resolve(model, version).stats.snapshot();
}

function infer(server: InferdServer, model: string, x: number[], version?: string): Promise<InferenceResponse> {
  return server.plane.infer(callContext(model, version), { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array(x) }] });
}

beforeAll(async () => {
  redis = await startRedis();
  repo = await makeRepository({
    scale: { config: CONFIG, files: { '1/model.mjs': scaleModel(2) } },
    other: { config: CONFIG, files: { '1/model.mjs': scaleModel(3) } },
    versioned: { config: CONFIG, files: { '1/model.mjs': scaleModel(10) } },
    slow: {
      config: CONFIG,
      files: { '1/model.mjs': 'export function predict({ x }) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); return { y: { datatype: "FP32", shape: x.shape, data: x.data } }; }' },
    },
    brief: { config: CONFIG.replace('ttl_seconds: 60', 'ttl_seconds: 1'), files: { '1/model.mjs': scaleModel(4) } },
  });
}, 60_000);

afterAll(async () => {
  for (const s of servers) {
    await cacheOf(s).cache.close();
    await s.shutdown(2000);
  }
  await redis?.stop();
});

describe('prediction cache', () => {
  let server: InferdServer;
  let url: string;
  let clients: Clients;
  const row = [1.5, -2.25, 3.125, 4];

  beforeAll(async () => {
    ({ server, url } = await start({ server: { grpc_port: 0 } }));
    clients = connect(server.grpcPort);
  }, 60_000);
  afterAll(() => clients?.close());

  it('the same tensor over JSON, binary and gRPC is one entry', async () => {
    const json = await postJson(`${url}/v2/models/scale/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: row }] });
    expect(json.status).toBe(200);
    expect(json.headers.get('x-inferd-cache')).toBe('miss');
    expect(json.body.outputs[0].data).toEqual(row.map((v) => v * 2));

    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } }] }));
    const binary = await fetch(`${url}/v2/models/scale/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      body: Buffer.concat([header, Buffer.from(new Float32Array(row).buffer)]),
    });
    expect(binary.status).toBe(200);
    expect(binary.headers.get('x-inferd-cache')).toBe('hit');
    expect((JSON.parse(await binary.text()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data).toEqual(row.map((v) => v * 2));

    const { response: grpcAnswer } = await call<{ outputs: Array<{ name: string }>; raw_output_contents: Buffer[] }>(clients.inference, 'ModelInfer', {
      model_name: 'scale',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: row } }],
    });
    const values = Array.from(new Float32Array(new Uint8Array(grpcAnswer.raw_output_contents[0]!).buffer));
    expect(values).toEqual(row.map((v) => v * 2));

    const stats = statsOf(server, 'scale');
    expect(stats.execution_count).toBe(1);
    expect(stats.inference_stats.cache_miss.count).toBe(1);
    expect(stats.inference_stats.cache_hit.count).toBe(2);
    expect(stats.inference_count).toBe(3);
    expect(cacheOf(server).cache.memoryEntries).toBe(1);

    // Triton's statistics fields carry the counts over both doors.
    const rest = await fetch(`${url}/v2/models/scale/versions/1/stats`).then((r) => r.json() as Promise<{ model_stats: Array<{ inference_stats: { cache_hit: { count: number } } }> }>);
    expect(rest.model_stats[0]!.inference_stats.cache_hit.count).toBe(2);

    // A different requested output set or parameter is a different entry.
    await postJson(`${url}/v2/models/scale/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: row }], parameters: { mode: 'b' } });
    expect(cacheOf(server).cache.memoryEntries).toBe(2);
  });

  it('1,000 concurrent identical requests run the model once', async () => {
    const before = statsOf(server, 'other').execution_count;
    const answers = await Promise.all(Array.from({ length: 1000 }, () => infer(server, 'other', [7, 8, 9, 10])));
    for (const a of answers) expect(Array.from(a.outputs[0]!.data as Float32Array)).toEqual([21, 24, 27, 30]);
    expect(statsOf(server, 'other').execution_count - before).toBe(1);
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/inferd_cache_coalesced_total\{model="other"\} 999/);
    expect(metrics).toMatch(/inferd_cache_misses_total\{model="other"\} 1/);
  });

  it('two replicas share answers through Redis', async () => {
    const { server: replica } = await start();
    const first = await infer(server, 'scale', [100, 200, 300, 400]);
    expect(Array.from(first.outputs[0]!.data as Float32Array)).toEqual([200, 400, 600, 800]);
    // The write to Redis is not awaited by the answer: give it a moment.
    await new Promise((r) => setTimeout(r, 100));
    const ctx = callContext('scale');
    const shared = await replica.plane.infer(ctx, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([100, 200, 300, 400]) }] });
    expect(Array.from(shared.outputs[0]!.data as Float32Array)).toEqual([200, 400, 600, 800]);
    expect(ctx.responseHeaders?.['x-inferd-cache']).toBe('hit');
    const stats = statsOf(replica, 'scale');
    expect(stats.execution_count).toBe(0);
    expect(stats.inference_stats.cache_hit.count).toBe(1);
  });

  it('a burst over two replicas runs the model once in all (one computes, the other waits in Redis)', async () => {
    const replica = servers[1] ?? (await start()).server;
    const burst = (s: InferdServer) => Array.from({ length: 100 }, () => infer(s, 'slow', [4, 3, 2, 1]));
    const answers = await Promise.all([...burst(server), ...burst(replica)]);
    for (const a of answers) expect(Array.from(a.outputs[0]!.data as Float32Array)).toEqual([4, 3, 2, 1]);
    expect(statsOf(server, 'slow').execution_count + statsOf(replica, 'slow').execution_count).toBe(1);
  }, 30_000);

  it('Redis killed mid-test: every request is still answered, from memory and the model', async () => {
    await redis.stop();
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const r = await postJson(`${url}/v2/models/scale/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [i % 5, 1, 2, 3] }] });
        return r;
      }),
    );
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.outputs[0].data[1]).toBe(2);
    }
    // Cached in memory while Redis is away.
    const again = await postJson(`${url}/v2/models/scale/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [3, 1, 2, 3] }] });
    expect(again.headers.get('x-inferd-cache')).toBe('hit');
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
    expect(Number(/inferd_cache_redis_errors_total (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
    await redis.start();
  }, 30_000);

  it('a new version never returns the old version’s answer', async () => {
    const v1 = await infer(server, 'versioned', [1, 2, 3, 4]);
    expect(v1.model_version).toBe('1');
    expect(Array.from(v1.outputs[0]!.data as Float32Array)).toEqual([10, 20, 30, 40]);
    await mkdir(join(repo, 'versioned', '2'), { recursive: true });
    await writeFile(join(repo, 'versioned', '2', 'model.mjs'), scaleModel(100));
    await server.manager.load('versioned');
    const v2 = await infer(server, 'versioned', [1, 2, 3, 4]);
    expect(v2.model_version).toBe('2');
    expect(Array.from(v2.outputs[0]!.data as Float32Array)).toEqual([100, 200, 300, 400]);
    expect(server.manager.serving.resolve('versioned', '2').stats.snapshot().execution_count).toBe(1);
  }, 60_000);

  it('answers expire after their TTL, in memory and in Redis', async () => {
    const first = callContext('brief');
    await server.plane.infer(first, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([5, 5, 5, 5]) }] });
    expect(first.responseHeaders?.['x-inferd-cache']).toBe('miss');
    const second = callContext('brief');
    await server.plane.infer(second, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([5, 5, 5, 5]) }] });
    expect(second.responseHeaders?.['x-inferd-cache']).toBe('hit');
    await new Promise((r) => setTimeout(r, 1200));
    const third = callContext('brief');
    await server.plane.infer(third, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([5, 5, 5, 5]) }] });
    expect(third.responseHeaders?.['x-inferd-cache']).toBe('miss');
    expect(statsOf(server, 'brief').execution_count).toBe(2);
  });

  it('the admin endpoint clears a model’s answers', async () => {
    await infer(server, 'scale', [9, 9, 9, 9]);
    const cleared = await postJson(`${url}/v2/admin/cache/clear`, { model: 'scale' });
    expect(cleared.status).toBe(200);
    expect(cleared.body.cleared.memory).toBeGreaterThan(0);
    const ctx = callContext('scale');
    await server.plane.infer(ctx, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([9, 9, 9, 9]) }] });
    expect(ctx.responseHeaders?.['x-inferd-cache']).toBe('miss');
    const bad = await postJson(`${url}/v2/admin/cache/clear`, { model: 3 });
    expect(bad.status).toBe(400);

    // The command line goes through the same endpoint.
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await main(['node', 'inferd', 'cache', 'clear', '--url', url, '--model', 'scale']);
    } finally {
      spy.mockRestore();
    }
    expect(written.join('')).toMatch(/cleared 1 cached answers in memory and \d+ in Redis for model 'scale'/);
    const after = callContext('scale');
    await server.plane.infer(after, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([9, 9, 9, 9]) }] });
    expect(after.responseHeaders?.['x-inferd-cache']).toBe('miss');
    // Other models' answers stay.
    const other = callContext('other');
    await server.plane.infer(other, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([7, 8, 9, 10]) }] });
    expect(other.responseHeaders?.['x-inferd-cache']).toBe('hit');
  });
});
