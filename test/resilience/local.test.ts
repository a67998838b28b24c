/**
 * Resilience settings on local models: the bulkhead refuses past its bound with 503 and
 * Retry-After; a failing model is answered by its fallback model, saying so; bad input is the
 * caller's fault and never falls back; the retry budget's arithmetic over its window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/models/config.js';
import { RetryBudget } from '../../src/resilience/budget.js';
import type { InferdServer } from '../../src/server/index.js';
import { makeRepository, postJson, startInProcess } from '../support/server.js';

const SIGNATURE = `inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
warmup: []
`;

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    slow: {
      config: `runtime: js\nmax_batch_size: 0\n${SIGNATURE}resilience: { bulkhead: { max_concurrent: 1, max_queue: 1 } }\n`,
      files: { '1/model.mjs': 'export function predict({ x }) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); return { y: { datatype: "FP32", shape: x.shape, data: x.data } }; }' },
    },
    broken: {
      config: `runtime: js\nmax_batch_size: 8\n${SIGNATURE}resilience: { fallback: { model: backup } }\n`,
      files: { '1/model.mjs': 'export function predict() { throw new Error("weights corrupted"); }' },
    },
    ping: {
      config: `runtime: js\nmax_batch_size: 8\n${SIGNATURE}resilience: { fallback: { model: pong } }\n`,
      files: { '1/model.mjs': 'export function predict() { throw new Error("down"); }' },
    },
    pong: {
      config: `runtime: js\nmax_batch_size: 8\n${SIGNATURE}resilience: { fallback: { model: ping } }\n`,
      files: { '1/model.mjs': 'export function predict() { throw new Error("down too"); }' },
    },
    backup: {
      config: `runtime: js\nmax_batch_size: 8\n${SIGNATURE}`,
      files: { '1/model.mjs': 'export function predict({ x }) { return { y: { datatype: "FP32", shape: x.shape, data: x.data.map(() => 0.5) } }; }' },
    },
  });
  ({ server, url } = await startInProcess(repo));
}, 60_000);

afterAll(async () => {
  await server?.shutdown(2000);
});

const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

describe('resilience on local models', () => {
  it('the bulkhead answers 503 with Retry-After past its bound', async () => {
    const answers = await Promise.all(Array.from({ length: 4 }, () => postJson(`${url}/v2/models/slow/infer`, body)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 200, 503, 503]);
    const refused = answers.find((a) => a.status === 503)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.error).toContain('resilience.bulkhead');
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/inferd_bulkhead_rejected_total\{model="slow"\} 2/);
  });

  it('a failing model is answered by its fallback model, which the answer names', async () => {
    const r = await postJson(`${url}/v2/models/broken/infer`, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.outputs[0].data).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(r.body.parameters.fallback).toBe('backup/1');
    expect(r.headers.get('x-inferd-fallback')).toBe('backup/1');
    const metrics = await fetch(`${url}/metrics`).then((m) => m.text());
    expect(metrics).toMatch(/inferd_fallback_answers_total\{model="broken",reason="error"\} 1/);
  });

  it('fallbacks that form a cycle end with an error naming it', async () => {
    const r = await postJson(`${url}/v2/models/ping/infer`, body);
    expect(r.status).toBe(409);
    expect(r.body.error).toContain('form a cycle');
  });

  it('bad input is the caller’s fault: no fallback', async () => {
    const r = await postJson(`${url}/v2/models/broken/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    expect(r.status).toBe(400);
    expect(r.headers.get('x-inferd-fallback')).toBeNull();
  });
});

describe('retry budget', () => {
  it('allows ratio × requests plus the floor over its window, and forgets old seconds', () => {
    let now = 1_000_000;
    const budget = new RetryBudget(0.2, 0, 10, () => now);
    for (let i = 0; i < 50; i++) budget.request();
    let retries = 0;
    while (budget.canRetry()) {
      budget.spend();
      retries++;
    }
    expect(retries).toBe(10);
    now += 11_000;
    expect(budget.canRetry()).toBe(false); // no requests in the window: nothing to spend
    const floor = new RetryBudget(0, 1, 10, () => now);
    let allowed = 0;
    while (floor.canRetry()) {
      floor.spend();
      allowed++;
    }
    expect(allowed).toBe(10);
  });
});

describe('serving options in a model config', () => {
  const parse = (raw: unknown) => () => parseModelConfig(raw, 'm', 'm/config.yaml');
  it('refuses inconsistent sections, naming the key', () => {
    expect(parse({ runtime: 'remote' })).toThrow(/'runtime: remote' and a 'remote' section go together/);
    expect(parse({ runtime: 'remote', remote: { url: 'ftp://x' } })).toThrow(/'remote.url' must match/);
    expect(parse({ runtime: 'ensemble', ensemble: { steps: [{ model: 'a', inputs: {}, outputs: {} }] } })).toThrow(/declares its 'inputs' and 'outputs'/);
    expect(parse({ resilience: { fallback: { response: { outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [1] }] } } } })).toThrow(
      /fallback output 'y' has 1 values but shape \[1, 2\] holds 2/,
    );
    expect(parse({ resilience: { retry: { max_attempts: 0 } } })).toThrow(/max_attempts/);
    expect(parse({ cache: { ttl_seconds: 30 }, resilience: { timeout_ms: 100, bulkhead: { max_concurrent: 2 } } })()).toMatchObject({ cache: { enabled: true, ttl_seconds: 30 } });
  });
});
