/**
 * A remote model (runtime: remote) served by an in-process inferd, living in a second inferd
 * process: answers equal the upstream's; upstream killed → the circuit opens within its window,
 * the fallback answers (and says so), the circuit closes once the upstream is back; a slow
 * upstream is cut at the timeout; a retry storm stays within the retry budget (upstream calls
 * counted by the upstream itself).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceResponse } from '../../src/core/types.js';
import { callContext } from '../../src/pipeline/context.js';
import type { ResiliencePolicy } from '../../src/resilience/policy.js';
import type { InferdServer } from '../../src/server/index.js';
import { makeRepository, postJson, startInProcess } from '../support/server.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const SIGNATURE = `
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
`;

let upstream: Upstream;
let server: InferdServer;
let url: string;

function remoteConfig(model: string, extra: string, maxBatch = 8, url = upstream.url): string {
  return `runtime: remote
max_batch_size: ${maxBatch}
dynamic_batching: { max_queue_delay_microseconds: 0 }
remote: { url: ${url}, model: ${model}, timeout_ms: 5000 }
${extra}`;
}

beforeAll(async () => {
  const upstreamRepo = await makeRepository({
    scale: {
      config: `runtime: js\nmax_batch_size: 8\n${SIGNATURE}`,
      files: { '1/model.mjs': 'export function predict({ x }) { return { y: { datatype: "FP32", shape: x.shape, data: x.data.map((v) => v * 2) } }; }' },
    },
    slow: {
      config: `runtime: js\nmax_batch_size: 8\nwarmup: []\n${SIGNATURE}`,
      files: { '1/model.mjs': 'export function predict({ x }) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500); return { y: { datatype: "FP32", shape: x.shape, data: x.data } }; }' },
    },
    failing: {
      config: `runtime: js\nmax_batch_size: 8\nwarmup: []\n${SIGNATURE}`,
      files: { '1/model.mjs': 'export function predict() { throw new Error("the upstream model is broken"); }' },
    },
  });
  upstream = await startUpstream(upstreamRepo);
  const repo = await makeRepository({
    remote_scale: {
      config: remoteConfig(
        'scale',
        `resilience:
  timeout_ms: 1000
  circuit_breaker: { failure_ratio: 0.5, window_ms: 2000, min_requests_per_second: 2, half_open_after_ms: 500 }
  fallback: { response: { outputs: [{ name: y, datatype: FP32, shape: [1, 4], data: [-1, -1, -1, -1] }] } }
`,
      ),
    },
    remote_scale_grpc: { config: remoteConfig('scale', '', 8, upstream.grpcUrl) },
    remote_slow: { config: remoteConfig('slow', 'resilience: { timeout_ms: 300 }\n') },
    remote_failing: {
      config: remoteConfig('failing', 'resilience:\n  retry: { max_attempts: 3, initial_delay_ms: 1, max_delay_ms: 5, budget_ratio: 0.1, budget_min_per_second: 0 }\n', 0),
    },
  });
  ({ server, url } = await startInProcess(repo));
}, 120_000);

afterAll(async () => {
  await server?.shutdown(2000);
  await upstream?.kill();
});

const x = (v: number) => ({ inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 4], data: new Float32Array([v, v + 1, v + 2, v + 3]) }] });

function breakerState(): string {
  const policy = server.plane.policies.find((p) => p.name === 'resilience') as ResiliencePolicy;
  return policy.guardOf(server.manager.serving.resolve('remote_scale'))!.circuitState;
}

describe('remote models', () => {
  it('reads the signature from the upstream and answers as it does', async () => {
    const meta = await fetch(`${url}/v2/models/remote_scale`).then((r) => r.json() as Promise<{ inputs: unknown[]; outputs: unknown[] }>);
    expect(meta.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
    const r = await postJson(`${url}/v2/models/remote_scale/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }] });
    expect(r.status).toBe(200);
    expect(r.body.outputs[0].data).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
    expect(r.headers.get('x-inferd-fallback')).toBeNull();
    // Batching on this side: concurrent requests are merged before they go upstream.
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => server.plane.infer(callContext('remote_scale'), x(i))));
    answers.forEach((a, i) => expect(Array.from(a.outputs[0]!.data as Float32Array)).toEqual([2 * i, 2 * i + 2, 2 * i + 4, 2 * i + 6]));
    expect(server.manager.serving.resolve('remote_scale').stats.snapshot().execution_count).toBeLessThan(17);
  });

  it('over gRPC too: signature from the upstream, answers as it gives them', async () => {
    const meta = await fetch(`${url}/v2/models/remote_scale_grpc`).then((r) => r.json() as Promise<{ inputs: unknown[] }>);
    expect(meta.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => server.plane.infer(callContext('remote_scale_grpc'), x(i))));
    answers.forEach((a, i) => expect(Array.from(a.outputs[0]!.data as Float32Array)).toEqual([2 * i, 2 * i + 2, 2 * i + 4, 2 * i + 6]));
    const bad = await postJson(`${url}/v2/models/remote_scale_grpc/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    expect(bad.status).toBe(400);
  });

  it('upstream killed: the circuit opens within its window and the fallback answers; it closes when the upstream returns', async () => {
    expect(breakerState()).toBe('closed');
    // Let the earlier tests' successes leave the breaker's 2 s window: the window then holds this outage only.
    await new Promise((r) => setTimeout(r, 2100));
    await upstream.kill();
    let restarted = false;
    try {
      const killedAt = Date.now();
      let openedAt: number | undefined;
      const answers: InferenceResponse[] = [];
      while (Date.now() - killedAt < 2000) {
        const ctx = callContext('remote_scale');
        const a = await server.plane.infer(ctx, x(1));
        answers.push(a);
        expect(a.parameters?.['fallback']).toBe('static');
        expect(ctx.responseHeaders?.['x-inferd-fallback']).toBe('static');
        if (breakerState() === 'open') {
          openedAt = Date.now();
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(openedAt).toBeDefined();
      expect(openedAt! - killedAt).toBeLessThan(2000);
      expect(Array.from(answers.at(-1)!.outputs[0]!.data as Float32Array)).toEqual([-1, -1, -1, -1]);
      // Over HTTP too, with the header.
      const viaHttp = await postJson(`${url}/v2/models/remote_scale/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }] });
      expect(viaHttp.status).toBe(200);
      expect(viaHttp.headers.get('x-inferd-fallback')).toBe('static');
      expect(viaHttp.body.parameters.fallback).toBe('static');
      const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/inferd_circuit_state\{model="remote_scale",version="1"\} 1/);

      await upstream.start();
      restarted = true;
      const backAt = Date.now();
      let closed = false;
      while (Date.now() - backAt < 10_000) {
        const a = await server.plane.infer(callContext('remote_scale'), x(1));
        if (a.parameters?.['fallback'] === undefined) {
          expect(Array.from(a.outputs[0]!.data as Float32Array)).toEqual([2, 4, 6, 8]);
          closed = breakerState() === 'closed';
          if (closed) break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(closed).toBe(true);
    } finally {
      // Later tests need the upstream whatever happened here.
      if (!restarted) await upstream.start();
    }
  }, 90_000);

  it('a slow upstream is cut at the timeout', async () => {
    const started = Date.now();
    const r = await postJson(`${url}/v2/models/remote_slow/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    const elapsed = Date.now() - started;
    expect(r.status).toBe(504);
    expect(r.body.error).toContain('remote_slow');
    // The upstream takes 1.5 s; the caller is answered at the 300 ms timeout.
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
  });

  it('a retry storm stays within the retry budget (upstream calls counted upstream)', async () => {
    const requests = 100;
    let done = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (done < requests) {
          done++;
          const r = await postJson(`${url}/v2/models/remote_failing/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
          statuses.push(r.status);
        }
      }),
    );
    expect(statuses).toHaveLength(requests);
    expect(new Set(statuses)).toEqual(new Set([503]));
    const stats = await fetch(`${upstream.url}/v2/models/failing/stats`).then((r) => r.json() as Promise<{ model_stats: Array<{ inference_stats: { fail: { count: number } } }> }>);
    const upstreamCalls = stats.model_stats[0]!.inference_stats.fail.count;
    // Without a budget: 100 × (1 + 3) = 400 calls. With 10%: about 110.
    expect(upstreamCalls).toBeGreaterThan(requests);
    expect(upstreamCalls).toBeLessThanOrEqual(requests * 1.1 + 5);
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
    expect(Number(/inferd_retry_budget_exhausted_total\{model="remote_failing"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
  }, 60_000);
});
