import { afterEach, describe, expect, it } from 'vitest';
import type { InferenceRequest, InferenceResponse, RequestContext } from '../../src/core/types.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import type { RunOnVersion } from '../../src/routing/shadow.js';
import { context, request, seeded } from './fakes.js';

let service: TrafficService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

function answer(version: string, data: Float32Array | Int32Array, datatype: 'FP32' | 'INT32' = 'FP32'): InferenceResponse {
  return { model_name: 'fraud', model_version: version, outputs: [{ name: 'y', datatype, shape: [data.length], data }] };
}

async function open(shadow: Record<string, unknown>, run: RunOnVersion): Promise<TrafficService> {
  service = await TrafficService.open(new Map([['fraud', parseTrafficConfig({ split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, ...shadow } }, 'fraud')]]), {
    runOnVersion: run,
    random: seeded(11),
  });
  return service;
}

const primary = async (ctx: RequestContext, req: InferenceRequest): Promise<InferenceResponse> => {
  // Hand the input to a "worker" the way the data plane may: the caller's buffer is detached.
  const input = req.inputs[0]!.data as Float32Array;
  structuredClone(input.buffer, { transfer: [input.buffer] });
  return answer(ctx.version!, new Float32Array([0.5, 0.25]));
};

async function settle(traffic: TrafficService, until: (s: NonNullable<ReturnType<TrafficService['view']>>['shadow']) => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (until(traffic.view('fraud')!.shadow)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`shadow did not settle: ${JSON.stringify(traffic.view('fraud')!.shadow)}`);
}

describe('shadow', () => {
  it('mirrors every request at 100%, on the shadow version, with the input intact, and compares values', async () => {
    const seen: Array<{ version?: string; input: number[]; variant?: string }> = [];
    const traffic = await open({ percent: 100, batch_window: 0 }, async (ctx, req) => {
      seen.push({ version: ctx.version!, input: [...(req.inputs[0]!.data as Float32Array)], variant: ctx.variant! });
      return answer(ctx.version!, new Float32Array([0.75, 0.25]));
    });
    const policy = routingPolicy(traffic);
    for (let i = 0; i < 20; i++) {
      const response = await policy.infer!(context('fraud'), request(), primary);
      expect(response.model_version).toBe('1');
    }
    await settle(traffic, (s) => s!.completed === 20);
    expect(seen).toHaveLength(20);
    expect(seen[0]).toEqual({ version: '2', input: [1, 2], variant: 'shadow' });
    const stats = traffic.view('fraud')!.shadow!;
    expect(stats).toMatchObject({ mirrored: 20, completed: 20, errors: 0, valueComparisons: 40, dropped: 0 });
    expect(stats.meanAbsoluteError).toBeCloseTo(0.125, 12);
    expect(stats.maxAbsoluteError).toBeCloseTo(0.25, 12);
    expect(stats.latencyMs.primary.p99).not.toBeNull();
    expect(stats.latencyMs.shadow.p99).not.toBeNull();
  });

  it('gathers mirrored requests into one batched call and splits the answer back by rows', async () => {
    const calls: Array<{ shape: number[]; input: number[]; requestId: string }> = [];
    const traffic = await open({ percent: 100, batch_window: '30ms', max_batch: 8 }, async (ctx, req) => {
      const x = req.inputs[0]!;
      calls.push({ shape: x.shape, input: [...(x.data as Float32Array)], requestId: ctx.requestId });
      // One output row per input row: the row's first value, plus 0.25.
      const rows = x.shape[0]!;
      const width = x.data.length / rows;
      return { model_name: 'fraud', model_version: ctx.version!, outputs: [{ name: 'y', datatype: 'FP32', shape: [rows, 1], data: Float32Array.from({ length: rows }, (_, r) => (x.data as Float32Array)[r * width]! + 0.25) }] };
    });
    const policy = routingPolicy(traffic);
    const rowRequest = (i: number): InferenceRequest => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array([i, i + 1]) }] });
    const callerAnswer = async (ctx: RequestContext, req: InferenceRequest): Promise<InferenceResponse> => {
      const first = (req.inputs[0]!.data as Float32Array)[0]!;
      return { model_name: 'fraud', model_version: ctx.version!, outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: new Float32Array([first]) }] };
    };
    for (let i = 0; i < 20; i++) await policy.infer!(context('fraud'), rowRequest(i), callerAnswer);
    await settle(traffic, (s) => s!.completed === 20);
    // 20 requests in batches of at most 8: three calls, rows in arrival order.
    expect(calls.map((c) => c.shape)).toEqual([[8, 2], [8, 2], [4, 2]]);
    expect(calls.flatMap((c) => c.input.filter((_, k) => k % 2 === 0))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(calls[0]!.requestId).toMatch(/\.shadow\+8$/);
    // Each part is compared with its own caller's answer: every shadow row is 0.25 off.
    const stats = traffic.view('fraud')!.shadow!;
    expect(stats).toMatchObject({ mirrored: 20, completed: 20, errors: 0, valueComparisons: 20 });
    expect(stats.meanAbsoluteError).toBeCloseTo(0.25, 12);
    expect(stats.maxAbsoluteError).toBeCloseTo(0.25, 12);
  });

  it('settles at the batch size a version takes', async () => {
    const shapes: number[][] = [];
    const traffic = await open({ percent: 100, batch_window: '20ms', max_batch: 16 }, async (ctx, req) => {
      const x = req.inputs[0]!;
      shapes.push(x.shape);
      if (x.shape[0]! > 5) throw new Error('at most 5 rows');
      return { model_name: 'fraud', model_version: ctx.version!, outputs: [{ name: 'y', datatype: 'FP32', shape: [x.shape[0]!, 2], data: new Float32Array(x.data.length) }] };
    });
    const policy = routingPolicy(traffic);
    const oneRow = (): InferenceRequest => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) }] });
    for (let i = 0; i < 16; i++) await policy.infer!(context('fraud'), oneRow(), primary);
    await settle(traffic, (s) => s!.completed === 16);
    for (let i = 0; i < 8; i++) await policy.infer!(context('fraud'), oneRow(), primary);
    await settle(traffic, (s) => s!.completed === 24);
    // 16 fails, then two batches of 8 at once (concurrency 2) fail, then batches of 4: the 16 first, then the 8 later ones.
    expect(shapes.map((x) => x[0])).toEqual([16, 8, 8, 4, 4, 4, 4, 4, 4]);
    expect(traffic.view('fraud')!.shadow).toMatchObject({ errors: 0, dropped: 0, valueComparisons: 24 * 2 });
  });

  it('runs a version whose answers cannot be split one request at a time', async () => {
    const shapes: number[][] = [];
    const traffic = await open({ percent: 100, batch_window: '20ms' }, async (ctx, req) => {
      shapes.push(req.inputs[0]!.shape);
      // Always one row, however many came in: a batched answer cannot be split.
      return { model_name: 'fraud', model_version: ctx.version!, outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: new Float32Array([0.5, 0.25]) }] };
    });
    const policy = routingPolicy(traffic);
    const oneRow = (): InferenceRequest => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) }] });
    for (let i = 0; i < 6; i++) await policy.infer!(context('fraud'), oneRow(), primary);
    await settle(traffic, (s) => s!.completed === 6);
    for (let i = 0; i < 3; i++) await policy.infer!(context('fraud'), oneRow(), primary);
    await settle(traffic, (s) => s!.completed === 9);
    // 6 rows fail, two batches of 3 fail, then one at a time for good.
    expect(shapes).toEqual([[6, 2], [3, 2], [3, 2], ...Array.from({ length: 9 }, () => [1, 2])]);
    expect(traffic.view('fraud')!.shadow).toMatchObject({ errors: 0, dropped: 0 });
  });

  it('counts label agreement for integer outputs and for top classes with compare: argmax', async () => {
    let n = 0;
    const traffic = await open({ percent: 100, compare: 'argmax', batch_window: 0 }, async (ctx) => {
      n += 1;
      // Every other answer puts the top class elsewhere.
      return answer(ctx.version!, n % 2 === 0 ? new Float32Array([0.1, 0.9]) : new Float32Array([0.9, 0.1]));
    });
    const policy = routingPolicy(traffic);
    for (let i = 0; i < 10; i++) await policy.infer!(context('fraud'), request(), primary);
    await settle(traffic, (s) => s!.completed === 10);
    expect(traffic.view('fraud')!.shadow).toMatchObject({ labelComparisons: 10, agreementRate: 0.5 });

    await traffic.setPolicy('fraud', { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 100 } }, 'test');
    const labels = async (ctx: RequestContext) => answer(ctx.version!, new Int32Array([1, 2, 3, 4]), 'INT32');
    await routingPolicy(traffic).infer!(context('fraud'), request(), labels);
    await settle(traffic, (s) => s!.completed === 1);
    // Integer outputs compare as labels: the caller's 1, 2 against the shadow's 0.9, 0.1 (or 0.1, 0.9).
    expect(traffic.view('fraud')!.shadow).toMatchObject({ labelComparisons: 2, agreementRate: 0, valueComparisons: 0 });
  });

  it('never lets a throwing shadow reach the caller', async () => {
    const traffic = await open({ percent: 100 }, () => {
      throw new Error('shadow exploded synchronously');
    });
    const policy = routingPolicy(traffic);
    for (let i = 0; i < 10; i++) expect((await policy.infer!(context('fraud'), request(), primary)).model_version).toBe('1');
    const rejecting = await open({ percent: 100 }, async () => Promise.reject(new Error('shadow failed')));
    for (let i = 0; i < 10; i++) expect((await routingPolicy(rejecting).infer!(context('fraud'), request(), primary)).model_version).toBe('1');
    await settle(rejecting, (s) => s!.errors === 10);
  });

  it('never lets a hanging shadow slow the caller: the queue drops, the timeout frees the slot', async () => {
    const signals: Array<{ aborted: boolean }> = [];
    const traffic = await open({ percent: 100, queue_size: 5, concurrency: 2, timeout: '100ms', batch_window: 0 }, (ctx) => {
      signals.push(ctx.signal as AbortSignal);
      return new Promise<InferenceResponse>(() => undefined);
    });
    const policy = routingPolicy(traffic);
    const started = performance.now();
    for (let i = 0; i < 200; i++) expect((await policy.infer!(context('fraud'), request(), primary)).model_version).toBe('1');
    // 200 requests against a shadow that never answers: the caller path stays fast.
    expect(performance.now() - started).toBeLessThan(1000);
    // Mirrored work starts on the next turn of the event loop.
    await new Promise((r) => setImmediate(r));
    let stats = traffic.view('fraud')!.shadow!;
    expect(stats.running).toBe(2);
    expect(stats.queued).toBe(5);
    expect(stats.dropped).toBe(193);
    await settle(traffic, (s) => s!.timeouts === 7);
    stats = traffic.view('fraud')!.shadow!;
    expect(stats).toMatchObject({ running: 0, queued: 0, completed: 0 });
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it('mirrors about the configured share', async () => {
    const traffic = await open({ percent: 10, queue_size: 10_000 }, async (ctx) => answer(ctx.version!, new Float32Array([0.5, 0.25])));
    const policy = routingPolicy(traffic);
    for (let i = 0; i < 3000; i++) await policy.infer!(context('fraud'), request(), primary);
    const share = (100 * traffic.view('fraud')!.shadow!.mirrored) / 3000;
    expect(Math.abs(share - 10)).toBeLessThanOrEqual(2);
  });

  it('counts windows posted to worker threads that never take them as timed out, and frees their places', async () => {
    const calls: string[] = [];
    service = await TrafficService.open(
      new Map([['fraud', parseTrafficConfig({ split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 100, queue_size: 4, concurrency: 1, timeout: '50ms', batch_window: '5ms' } }, 'fraud')]]),
      {
        runOnVersion: async (ctx) => {
          calls.push(ctx.requestId);
          return answer('2', new Float32Array([0.5, 0.25]));
        },
        // Worker threads that are not there: nobody listens on this channel.
        mirrorTarget: () => ({ channel: `inferd.mirror:nobody:${process.pid}`, executionTimeoutMs: undefined, stopWorker: () => undefined }),
      },
    );
    const policy = routingPolicy(service);
    for (let i = 0; i < 8; i++) await policy.infer!(context('fraud'), request(), primary);
    const full = service.view('fraud')!.shadow!;
    expect(full.mirrored).toBe(8);
    expect(full.dropped).toBeGreaterThan(0);
    expect(full.queued + full.running).toBeLessThanOrEqual(5);
    await new Promise((r) => setTimeout(r, 200));
    const freed = service.view('fraud')!.shadow!;
    expect(freed).toMatchObject({ queued: 0, running: 0, completed: 0 });
    expect(freed.timeouts).toBe(8 - full.dropped);
    // The places are free again: the next request is taken, not dropped.
    await policy.infer!(context('fraud'), request(), primary);
    expect(service.view('fraud')!.shadow!.dropped).toBe(full.dropped);
    expect(calls).toEqual([]);
  });
});
