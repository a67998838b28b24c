/**
 * Traffic policies in front of a real data plane: JavaScript model versions running in worker
 * threads, one good, one that fails a third of its requests, one slow and different, one that
 * hangs. Real timers drive the canary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import type { InferenceRequest } from '../../src/core/types.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { mirrorTargetOf, runOnPlane } from '../../src/routing/plane.js';
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

const OFF_BY_ONE = `export function predict({ x }) { return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data, (v) => v * 2 + 1) } }; }`;

// Refuses more than one request's rows at once.
const ONE_AT_A_TIME = `export function predict({ x }) {
  if (x.shape[0] > 2) throw new Error('one request at a time');
  return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data, (v) => v * 2) } };
}`;

let server: InferdServer;
let repo: string;

beforeAll(async () => {
  repo = await makeRepository({
    scorer: { config: CONFIG, files: { '1/model.mjs': GOOD, '2/model.mjs': FAILING, '3/model.mjs': SLOW_AND_OFF, '4/model.mjs': HANGING, '5/model.mjs': ONE_AT_A_TIME } },
    // Two worker threads per version: each mirrored window must run on exactly one of them.
    twin: { config: `${CONFIG}instances: 2\n`, files: { '1/model.mjs': GOOD, '2/model.mjs': OFF_BY_ONE } },
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

  describe('in the shadow version\'s worker threads', () => {
    /** The plane is never called for a mirrored request: every call to it fails the test. */
    const planeCalls: string[] = [];
    const open = (model: string, shadow: Record<string, unknown>) =>
      TrafficService.open(new Map([[model, parseTrafficConfig({ split: { variants: [{ version: 1, weight: 100 }] }, shadow }, model)]]), {
        runOnVersion: (ctx, request) => {
          planeCalls.push(ctx.requestId);
          return runOnPlane(server.plane)(ctx, request);
        },
        mirrorTarget: (m, v) => mirrorTargetOf(server.manager, m, v),
      });

    it('names a target only for a ready version running in worker threads', () => {
      expect(mirrorTargetOf(server.manager, 'scorer', '3')).toMatchObject({ channel: expect.stringMatching(/^inferd\.mirror:scorer:3:/), executionTimeoutMs: 30_000 });
      expect(mirrorTargetOf(server.manager, 'scorer', '9')).toBeUndefined();
      expect(mirrorTargetOf(server.manager, 'nothing', '1')).toBeUndefined();
    });

    it('runs and compares there, batched, with the callers\' answers untouched', async () => {
      planeCalls.length = 0;
      const traffic = await open('scorer', { version: 3, percent: 100, queue_size: 1000, batch_window: '10ms' });
      const policy = routingPolicy(traffic);
      const next = runOnPlane(server.plane);
      for (let i = 0; i < 50; i++) {
        const response = await policy.infer!(context('scorer'), req(i), next);
        expect(response.model_version).toBe('1');
        expect([...(response.outputs[0]!.data as Float32Array)]).toEqual([2 * i, 2 * i + 2]);
      }
      for (let k = 0; k < 200 && traffic.view('scorer')!.shadow!.completed < 50; k++) await new Promise((r) => setTimeout(r, 25));
      const shadow = traffic.view('scorer')!.shadow!;
      expect(shadow).toMatchObject({ mirrored: 50, dropped: 0, completed: 50, errors: 0, timeouts: 0, queued: 0, running: 0, valueComparisons: 100, meanAbsoluteError: 0.5, maxAbsoluteError: 0.5 });
      // The version sleeps 20 ms per call, so it ran in fewer calls than requests: batched.
      expect(shadow.latencyMs.shadow.p50!).toBeGreaterThanOrEqual(15);
      expect(shadow.latencyMs.primary.p50).not.toBeNull();
      expect(planeCalls).toEqual([]);
      await traffic.close();
    }, 30_000);

    it('runs a window the version refuses as one batch request by request', async () => {
      const traffic = await open('scorer', { version: 5, percent: 100, queue_size: 1000, batch_window: '50ms' });
      const policy = routingPolicy(traffic);
      const next = runOnPlane(server.plane);
      await Promise.all(Array.from({ length: 10 }, (_, i) => policy.infer!(context('scorer'), req(i), next)));
      for (let k = 0; k < 200 && traffic.view('scorer')!.shadow!.completed < 10; k++) await new Promise((r) => setTimeout(r, 25));
      expect(traffic.view('scorer')!.shadow!).toMatchObject({ mirrored: 10, completed: 10, errors: 0, valueComparisons: 20, meanAbsoluteError: 0 });
      await traffic.close();
    }, 30_000);

    it('runs each window on exactly one of several worker threads', async () => {
      const traffic = await open('twin', { version: 2, percent: 100, queue_size: 1000, batch_window: '0ms' });
      const policy = routingPolicy(traffic);
      const next = runOnPlane(server.plane);
      for (let i = 0; i < 40; i++) expect((await policy.infer!(context('twin'), req(i), next)).model_version).toBe('1');
      for (let k = 0; k < 200 && traffic.view('twin')!.shadow!.completed < 40; k++) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 100));
      // A window run twice would count 80 comparisons per 40 requests twice.
      expect(traffic.view('twin')!.shadow!).toMatchObject({ mirrored: 40, completed: 40, errors: 0, valueComparisons: 80, meanAbsoluteError: 1, maxAbsoluteError: 1 });
      await traffic.close();
    }, 30_000);

    it('drops past the bound and counts timeouts for a hanging version, callers answered meanwhile', async () => {
      const traffic = await open('scorer', { version: 4, percent: 100, queue_size: 10, concurrency: 2, timeout: '200ms' });
      const policy = routingPolicy(traffic);
      const next = runOnPlane(server.plane);
      const started = performance.now();
      for (let i = 0; i < 100; i++) expect((await policy.infer!(context('scorer'), req(i), next)).model_version).toBe('1');
      expect(performance.now() - started).toBeLessThan(3000);
      const hung = traffic.view('scorer')!.shadow!;
      expect(hung.completed).toBe(0);
      expect(hung.dropped).toBeGreaterThan(50);
      expect(hung.queued + hung.running).toBeLessThanOrEqual(12);
      // The run that hung ends after 3 s, over its 200 ms timeout: its jobs count as timed out.
      for (let k = 0; k < 200 && traffic.view('scorer')!.shadow!.timeouts === 0; k++) await new Promise((r) => setTimeout(r, 25));
      const after = traffic.view('scorer')!.shadow!;
      expect(after.timeouts).toBeGreaterThan(0);
      expect(after.completed).toBe(0);
      await traffic.close();
    }, 30_000);

    it('goes through the data plane when the version does not run here', async () => {
      planeCalls.length = 0;
      const traffic = await open('scorer', { version: 9, percent: 100, batch_window: '0ms' });
      const policy = routingPolicy(traffic);
      const next = runOnPlane(server.plane);
      for (let i = 0; i < 5; i++) expect((await policy.infer!(context('scorer'), req(i), next)).model_version).toBe('1');
      for (let k = 0; k < 200 && traffic.view('scorer')!.shadow!.errors < 5; k++) await new Promise((r) => setTimeout(r, 25));
      expect(traffic.view('scorer')!.shadow!).toMatchObject({ mirrored: 5, completed: 0, errors: 5 });
      expect(planeCalls).toHaveLength(5);
      await traffic.close();
    }, 30_000);
  });
});
