/**
 * Faults a careless model author or a hostile client can cause, run against one live server
 * with a well-behaved model beside them: a model that hangs, throws, exits or eats its heap,
 * a poisoned batch, and an oversized answer. The well-behaved model's requests all succeed,
 * /health keeps answering quickly, and the process stays within a memory bound.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { BC_ROW } from '../models/support.js';
import { EXAMPLES } from '../support/paths.js';
import { getJson, makeRepository, postJson, startChild, startInProcess } from '../support/server.js';

const JS_MODEL = (body: string) => `export function predict({ x }) {
  ${body}
  return { y: { datatype: 'INT32', shape: x.shape, data: x.data } };
}`;
const JS_CONFIG = (extra = '') => `runtime: js
max_batch_size: 0
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
warmup: []
${extra}`;

const MODELS = {
  // x[0] == 1 loops forever; anything else answers.
  hang: { config: JS_CONFIG('execution: { timeout_ms: 800, unhealthy_after_timeouts: 2 }\n'), files: { '1/model.mjs': JS_MODEL('if (x.data[0] === 1) { for (;;) {} }') } },
  thrower: { config: JS_CONFIG(), files: { '1/model.mjs': JS_MODEL("throw new Error('the model is broken');") } },
  exiter: { config: JS_CONFIG(), files: { '1/model.mjs': JS_MODEL('if (x.data[0] === 1) process.exit(7);') } },
  // x[0] == 1 keeps everything it allocates: the worker's heap limit stops it, not the process's.
  hog: { config: JS_CONFIG('execution: { worker_heap_mb: 64 }\n'), files: { '1/model.mjs': JS_MODEL('if (x.data[0] === 1) { const keep = []; for (;;) keep.push(new Array(100000).fill(Math.random())); }') } },
  breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
  text_encoder_tiny: { copyFrom: join(EXAMPLES, 'text_encoder_tiny') },
};

const x = (v: number) => ({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [v] }] });
const ROW = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: BC_ROW }] };

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository(MODELS);
  ({ server, url } = await startInProcess(repo, { server: { max_response_bytes: 4096 } }));
}, 120_000);

afterAll(async () => {
  await server?.shutdown(5000);
});

describe('a model that never answers', () => {
  it('is cut off at its execution timeout (504), its worker replaced; queued requests run on the new worker', async () => {
    const started = Date.now();
    const [stuck, queued] = await Promise.all([postJson(`${url}/v2/models/hang/infer`, x(1)), postJson(`${url}/v2/models/hang/infer`, x(2))]);
    expect(stuck.status).toBe(504);
    expect(stuck.body.error).toMatch(/execution timeout of 800 ms; its worker was terminated/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(queued.status).toBe(200);
    expect(queued.body.outputs[0].data).toEqual([2]);
  });

  it('repeated timeouts mark the version unhealthy until a run succeeds; readiness and the index say so', async () => {
    await postJson(`${url}/v2/models/hang/infer`, x(1));
    await postJson(`${url}/v2/models/hang/infer`, x(1));
    expect((await getJson(`${url}/v2/models/hang/ready`)).status).toBe(503);
    const ready = await getJson(`${url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(ready.body.failures)).toMatch(/unhealthy: 2 runs in a row exceeded the execution timeout/);
    const index = await postJson(`${url}/v2/repository/index`, {});
    expect(index.body.find((e: { name: string }) => e.name === 'hang')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/unhealthy/) });
    expect((await postJson(`${url}/v2/models/hang/infer`, x(3))).status).toBe(200);
    expect((await getJson(`${url}/v2/models/hang/ready`)).status).toBe(200);
  });

  it('a request deadline covers the run too: X-Request-Timeout answers 504 while the model still runs', async () => {
    const started = Date.now();
    const r = await postJson(`${url}/v2/models/hang/infer`, x(1), { 'x-request-timeout': '200' });
    expect(r.status).toBe(504);
    expect(r.body.error).toMatch(/deadline passed while model 'hang' was running it/);
    expect(Date.now() - started).toBeLessThan(700);
    // Let the run reach its timeout so the next test starts with a fresh worker.
    await new Promise((res) => setTimeout(res, 1000));
  });
});

describe('one bad request in a batch', () => {
  it('fails alone, as the caller error it is (400, invalid_input), while the valid ones batched with it succeed', async () => {
    const ids = (n: number) => ({
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 4], data: [n, 3297, 93, 3309] },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 4], data: [1, 1, 1, 1] },
      ],
    });
    for (let round = 0; round < 3; round++) {
      const requests = Array.from({ length: 16 }, (_, i) => postJson(`${url}/v2/models/text_encoder_tiny/infer`, ids(i === 7 ? 99_999 : 100 + i)));
      const answers = await Promise.all(requests);
      expect(answers.map((a) => a.status)).toEqual(answers.map((_, i) => (i === 7 ? 400 : 200)));
      expect(answers[7]!.body.error).toMatch(/the model refused this input: .*out of data bounds/);
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/inferd_inference_failures_total\{[^}]*model="text_encoder_tiny"[^}]*reason="invalid_input"[^}]*\} 3/);
    expect(metrics).not.toMatch(/inferd_inference_failures_total\{[^}]*model="text_encoder_tiny"[^}]*reason="internal"/);
  });
});

describe('requested outputs and the size of an answer', () => {
  it('refuses duplicate or unknown output names before anything runs', async () => {
    const many = { ...ROW, outputs: Array.from({ length: 10_000 }, () => ({ name: 'probabilities' })) };
    const r = await postJson(`${url}/v2/models/breast_cancer/infer`, many);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/output 'probabilities' is requested twice/);
    expect(JSON.stringify(r.body).length).toBeLessThan(2200);
    const unknown = await postJson(`${url}/v2/models/breast_cancer/infer`, { ...ROW, outputs: Array.from({ length: 10_000 }, (_, i) => ({ name: `o${i}` })) });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatch(/and 9995 more/);
  });

  it('refuses an answer over server.max_response_bytes before encoding it', async () => {
    // 16 embeddings of 128 FP32 values: 8,192 bytes, over the 4,096 this server allows.
    const ids = Array.from({ length: 16 * 4 }, (_, i) => 100 + i);
    const r = await postJson(`${url}/v2/models/text_encoder_tiny/infer`, {
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [16, 4], data: ids },
        { name: 'attention_mask', datatype: 'INT64', shape: [16, 4], data: ids.map(() => 1) },
      ],
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/more than this server's limit of 4096 \(server.max_response_bytes\)/);
  });

  it('bounds every error message, whatever the input', async () => {
    const inputs = Array.from({ length: 10_000 }, (_, i) => ({ name: `in${i}`, datatype: 'FP32', shape: [1], data: [1] }));
    const r = await postJson(`${url}/v2/models/breast_cancer/infer`, { inputs });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body).length).toBeLessThan(2200);
  });
});

describe('all faults at once, beside a well-behaved model', () => {
  it('the good model answers every request, /health stays fast, memory stays bounded', async () => {
    const rssBefore = process.memoryUsage().rss;
    const healthMs: number[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const t = performance.now();
        const r = await fetch(`${url}/health`);
        healthMs.push(performance.now() - t);
        expect(r.status).toBe(200);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const good: Array<Promise<number>> = [];
    const bad: Array<Promise<number>> = [];
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) good.push(postJson(`${url}/v2/models/breast_cancer/infer`, ROW).then((r) => r.status));
      bad.push(postJson(`${url}/v2/models/thrower/infer`, x(1)).then((r) => r.status));
      bad.push(postJson(`${url}/v2/models/exiter/infer`, x(1)).then((r) => r.status));
      if (i % 5 === 0) bad.push(postJson(`${url}/v2/models/hog/infer`, x(1)).then((r) => r.status));
      if (i % 5 === 0) bad.push(postJson(`${url}/v2/models/hang/infer`, x(1)).then((r) => r.status));
      await new Promise((res) => setTimeout(res, 50));
    }
    const goodStatuses = await Promise.all(good);
    const badStatuses = await Promise.all(bad);
    probing = false;
    await prober;
    expect(goodStatuses.every((s) => s === 200)).toBe(true);
    // The faulty models fail their own callers with 5xx, never the process.
    expect(badStatuses.every((s) => s === 500 || s === 504)).toBe(true);
    healthMs.sort((a, b) => a - b);
    // Replacing crashed workers costs the event loop a few milliseconds each; probes stay fast.
    const p95 = healthMs[Math.floor(healthMs.length * 0.95)]!;
    expect(p95).toBeLessThan(100);
    expect(healthMs[healthMs.length - 1]!).toBeLessThan(1000);
    // The hog's heap is its worker's: the server's own memory does not follow it.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(512 * 1024 * 1024);
    // Every model is still served after it all.
    expect((await postJson(`${url}/v2/models/exiter/infer`, x(2))).status).toBe(200);
    expect((await postJson(`${url}/v2/models/hog/infer`, x(2))).status).toBe(200);
  }, 120_000);
});

describe('SIGTERM with a model stuck in a run', () => {
  it('exits within the shutdown deadline plus a second, every accepted caller answered', async () => {
    const repo = await makeRepository({ hang: { config: JS_CONFIG('execution: { timeout_ms: 600000 }\n'), files: { '1/model.mjs': MODELS.hang.files['1/model.mjs'] } } });
    const child = await startChild(['--model-repository', repo], { INFERD_SHUTDOWN__DEADLINE_MS: '1500', INFERD_SHUTDOWN__LAME_DUCK_MS: '0', INFERD_LOGGING__LEVEL: 'warn' });
    const running = postJson(`${child.url}/v2/models/hang/infer`, x(1));
    const queued = postJson(`${child.url}/v2/models/hang/infer`, x(2));
    await new Promise((res) => setTimeout(res, 300));
    const signalled = Date.now();
    child.process.kill('SIGTERM');
    const [a, b] = await Promise.all([running, queued]);
    const code = await child.exited;
    const tookMs = Date.now() - signalled;
    expect(tookMs).toBeLessThan(1500 + 1000);
    expect([a.status, b.status]).toEqual([503, 503]);
    expect(code).toBe(1);
  }, 60_000);
});
