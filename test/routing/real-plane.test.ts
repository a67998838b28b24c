/**
 * Traffic policies in front of a real data plane: JavaScript model versions running in worker
 * threads, one good, one that fails a third of its requests, one slow and different, one that
 * hangs. Real timers drive the canary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import type { InferenceRequest } from '../../src/core/types.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { runOnPlane } from '../../src/routing/plane.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import type { InferdServer } from '../../src/server/index.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { context } from './fakes.js';

const CONFIG = `runtime: js
max_batch_size: 0
version_policy: { all: true }
inputs: [{ name: x, datatype: FP32, shape: [-1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1] }]
warmup: []
`;

const GOOD = `export function predict({ x }) { return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data, (v) => v * 2) } }; }`;
// Fails every request whose first value is a multiple of 3.
const FAILING = `export function predict({ x }) {
  if (x.data[0] % 3 === 0) throw new Error('version 2 cannot score this');
  return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data, (v) => v * 2) } };
}`;
const SLOW_AND_OFF = `export async function predict({ x }) {
  await new Promise((r) => setTimeout(r, 20));
  return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data, (v) => v * 2 + 0.5) } };
}`;
const HANGING = `export async function predict({ x }) {
  await new Promise((r) => setTimeout(r, 3000));
  return { y: { datatype: 'FP32', shape: x.shape, data: x.data } };
}`;

let server: InferdServer;
let repo: string;

beforeAll(async () => {
  repo = await makeRepository({
    scorer: { config: CONFIG, files: { '1/model.mjs': GOOD, '2/model.mjs': FAILING, '3/model.mjs': SLOW_AND_OFF, '4/model.mjs': HANGING } },
  });
  ({ server } = await startInProcess(repo));
}, 120_000);

afterAll(async () => {
  await server?.shutdown(10_000);
  await rm(repo, { recursive: true, force: true });
});

function req(i: number): InferenceRequest {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape: [2], data: new Float32Array([i, i + 1]) }] };
}

describe('traffic policies on a real data plane', () => {
  it('splits by weight and answers from the version it routed to', async () => {
    const traffic = await TrafficService.open(new Map([['scorer', parseTrafficConfig({ split: { variants: [{ name: 'a', version: 1, weight: 50 }, { name: 'b', version: 3, weight: 50 }] } }, 'scorer')]]));
    const policy = routingPolicy(traffic);
    const next = runOnPlane(server.plane);
    const counts: Record<string, number> = { '1': 0, '3': 0 };
    for (let i = 0; i < 200; i++) {
      const ctx = context('scorer');
      const response = await policy.infer!(ctx, req(i), next);
      expect(response.model_version).toBe(ctx.version);
      expect(ctx.responseHeaders!['x-inferd-variant']).toBe(ctx.version === '1' ? 'a' : 'b');
      counts[ctx.version!]! += 1;
    }
    expect(counts['1']).toBeGreaterThan(60);
    expect(counts['3']).toBeGreaterThan(60);
    await traffic.close();
  });

  it('rolls a failing canary back on its own, callers seeing only the failures of its share', async () => {
    const traffic = await TrafficService.open(
      new Map([
        [
          'scorer',
          parseTrafficConfig(
            { canary: { baseline: 1, canary: 2, steps: [{ weight: 20, pause: '5s' }, { weight: 100 }], analysis: { interval: '300ms', min_requests: 5, failure_limit: 1, max_error_rate: 0.05 } } },
            'scorer',
          ),
        ],
      ]),
    );
    const policy = routingPolicy(traffic);
    const next = runOnPlane(server.plane);
    let failures = 0;
    let canaryServed = 0;
    let canaryMultiplesOf3 = 0;
    let afterRollback = 0;
    const deadline = Date.now() + 20_000;
    let i = 0;
    while (traffic.view('scorer')!.canary!.phase !== 'rolled_back' && Date.now() < deadline) {
      const ctx = context('scorer');
      const x = i++;
      try {
        await policy.infer!(ctx, req(x), next);
      } catch {
        failures += 1;
      }
      if (ctx.version === '2') {
        canaryServed += 1;
        if (x % 3 === 0) canaryMultiplesOf3 += 1;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const view = traffic.view('scorer')!;
    expect(view.canary).toMatchObject({ phase: 'rolled_back', weight: 0, failed: 2 });
    expect(view.canary!.measurements.filter((m) => m.outcome === 'failed')).toHaveLength(2);
    // Exactly the canary's requests it cannot score failed; the baseline's never.
    expect(failures).toBeGreaterThan(0);
    expect(failures).toBe(canaryMultiplesOf3);
    expect(canaryServed).toBeGreaterThan(failures);
    for (let j = 0; j < 100; j++) {
      const ctx = context('scorer');
      await policy.infer!(ctx, req(3 * j), next);
      if (ctx.version === '2') afterRollback += 1;
    }
    expect(afterRollback).toBe(0);
    await traffic.close();
  }, 30_000);

  it('switches blue-green under continuous load with no failed request, and rolls back the same way', async () => {
    const traffic = await TrafficService.open(new Map([['scorer', parseTrafficConfig({ blue_green: { active: 1, standby: 3 } }, 'scorer')]]));
    const policy = routingPolicy(traffic);
    const next = runOnPlane(server.plane);
    let failures = 0;
    // Which phase each request started in, and the version that answered it.
    type Phase = 'before' | 'switched' | 'rolled_back';
    const current: { phase: Phase } = { phase: 'before' };
    const served: Array<{ phase: Phase; version: string }> = [];
    let stop = false;
    const callers = Array.from({ length: 8 }, async (_, c) => {
      for (let i = 0; !stop; i++) {
        const started = current.phase;
        try {
          const response = await policy.infer!(context('scorer'), req(c * 10_000 + i), next);
          served.push({ phase: started, version: response.model_version });
        } catch {
          failures += 1;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    await traffic.act('scorer', 'switch', 'ops');
    current.phase = 'switched';
    await new Promise((r) => setTimeout(r, 300));
    await traffic.act('scorer', 'rollback', 'ops');
    current.phase = 'rolled_back';
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(callers);
    expect(failures).toBe(0);
    const versions = (p: Phase) => new Set(served.filter((s) => s.phase === p).map((s) => s.version));
    expect(versions('before')).toEqual(new Set(['1']));
    expect(versions('switched')).toEqual(new Set(['3']));
    expect(versions('rolled_back')).toEqual(new Set(['1']));
    expect(served.filter((s) => s.phase === 'switched').length).toBeGreaterThan(10);
    await traffic.close();
  }, 30_000);

  it('shadows to a slower, different version and to a hanging one without touching callers', async () => {
    const traffic = await TrafficService.open(new Map([['scorer', parseTrafficConfig({ split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 3, percent: 100, queue_size: 1000 } }, 'scorer')]]), {
      runOnVersion: runOnPlane(server.plane),
    });
    const policy = routingPolicy(traffic);
    const next = runOnPlane(server.plane);
    for (let i = 0; i < 50; i++) {
      const response = await policy.infer!(context('scorer'), req(i), next);
      expect(response.model_version).toBe('1');
      expect([...(response.outputs[0]!.data as Float32Array)]).toEqual([2 * i, 2 * i + 2]);
    }
    for (let k = 0; k < 200 && traffic.view('scorer')!.shadow!.completed < 50; k++) await new Promise((r) => setTimeout(r, 25));
    const shadow = traffic.view('scorer')!.shadow!;
    expect(shadow).toMatchObject({ mirrored: 50, completed: 50, errors: 0, valueComparisons: 100, meanAbsoluteError: 0.5, maxAbsoluteError: 0.5 });
    expect(shadow.latencyMs.shadow.p50!).toBeGreaterThanOrEqual(15);

    await traffic.setPolicy('scorer', { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 4, percent: 100, queue_size: 10, concurrency: 2, timeout: '200ms' } }, 'test');
    const started = performance.now();
    for (let i = 0; i < 100; i++) expect((await policy.infer!(context('scorer'), req(i), next)).model_version).toBe('1');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(3000);
    const hung = traffic.view('scorer')!.shadow!;
    expect(hung.completed).toBe(0);
    expect(hung.dropped).toBeGreaterThan(50);
    await traffic.close();
  }, 30_000);
});
