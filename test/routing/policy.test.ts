import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/errors.js';
import { ManualClock } from '../../src/routing/clock.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { routingPolicy, VARIANT_HEADER } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import { context, FakePlane, request } from './fakes.js';

let service: TrafficService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

async function open(traffic: unknown, model = 'fraud'): Promise<TrafficService> {
  service = await TrafficService.open(new Map([[model, parseTrafficConfig(traffic, model)]]), { clock: new ManualClock(1_000_000) });
  return service;
}

describe('routing policy', () => {
  const split = { split: { variants: [{ name: 'control', version: 1, weight: 50 }, { name: 'treatment', version: 2, weight: 50 }], sticky: { header: 'x-user-id' } } };

  it('routes a request that names no version, setting ctx.version, ctx.variant and the variant header', async () => {
    const traffic = await open(split);
    const plane = new FakePlane({ '1': {}, '2': {} });
    const policy = routingPolicy(traffic, plane.now);
    const ctx = context('fraud', { 'x-user-id': 'alice' });
    const response = await policy.infer!(ctx, request(), plane.next);
    expect(['1', '2']).toContain(ctx.version);
    expect(ctx.variant).toBe(ctx.version === '1' ? 'control' : 'treatment');
    expect(ctx.responseHeaders![VARIANT_HEADER]).toBe(ctx.variant);
    expect(response.model_version).toBe(ctx.version);
    expect(plane.calls).toEqual([{ version: ctx.version, variant: ctx.variant }]);
  });

  it('leaves a request that names a version alone', async () => {
    const traffic = await open(split);
    const plane = new FakePlane({ '2': {} });
    const ctx = { ...context('fraud', { 'x-user-id': 'alice' }), version: '2' };
    await routingPolicy(traffic, plane.now).infer!(ctx, request(), plane.next);
    expect(ctx.variant).toBeUndefined();
    expect(ctx.responseHeaders![VARIANT_HEADER]).toBeUndefined();
    expect(plane.calls).toEqual([{ version: '2', variant: undefined }]);
  });

  it('leaves models without a policy alone', async () => {
    const traffic = await open(split);
    const plane = new FakePlane({ default: {} });
    const ctx = context('other');
    await routingPolicy(traffic, plane.now).infer!(ctx, request(), plane.next);
    expect(ctx.version).toBeUndefined();
  });

  it('keeps a user on one variant (header, then request parameter) and splits users by weight', async () => {
    const traffic = await open(split);
    const plane = new FakePlane({ '1': {}, '2': {} });
    const policy = routingPolicy(traffic, plane.now);
    const seen = new Map<string, string>();
    let treatment = 0;
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 2000; u++) {
        const ctx = context('fraud', { 'x-user-id': `u${u}` });
        await policy.infer!(ctx, request(), plane.next);
        if (round === 0) {
          seen.set(`u${u}`, ctx.version!);
          if (ctx.version === '2') treatment += 1;
        } else expect(ctx.version).toBe(seen.get(`u${u}`));
      }
    }
    expect(Math.abs((100 * treatment) / 2000 - 50)).toBeLessThanOrEqual(4);

    await traffic.setPolicy('fraud', { split: { ...split.split, sticky: { parameter: 'user' } } }, 'test');
    const a = context('fraud');
    await policy.infer!(a, request({ user: 'u7' }), plane.next);
    for (let i = 0; i < 20; i++) {
      const b = context('fraud');
      await policy.infer!(b, request({ user: 'u7' }), plane.next);
      expect(b.version).toBe(a.version);
    }
  });

  it('passes errors through unchanged and records them against the version that failed', async () => {
    const traffic = await open({ split: { variants: [{ version: 1, weight: 100 }] } });
    const policy = routingPolicy(traffic);
    const refused = new InvalidInputError('bad tensor');
    await expect(policy.infer!(context('fraud'), request(), async () => Promise.reject(refused))).rejects.toBe(refused);
    await expect(policy.infer!(context('fraud'), request(), async () => Promise.reject(new Error('crash')))).rejects.toThrow('crash');
    const summary = traffic.observations.summary('fraud', '1', 0, Number.MAX_SAFE_INTEGER);
    // The caller's bad input is not the version's failure; the crash is.
    expect(summary).toMatchObject({ requests: 2, errors: 1 });
  });

  it('remembers which variant served each request, for feedback', async () => {
    const traffic = await open(split);
    const plane = new FakePlane({ '1': {}, '2': {} });
    const ctx = context('fraud', { 'x-user-id': 'bob' }, 'req-42');
    await routingPolicy(traffic, plane.now).infer!(ctx, request(), plane.next);
    expect(await traffic.assignmentOf('req-42')).toMatchObject({ model: 'fraud', version: ctx.version, variant: ctx.variant });
  });
});
