/**
 * Traffic state in a real registry database, SQLite and PostgreSQL: a restart and a second
 * replica see the same policy, canary state survives, feedback joins the variant that served.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { getExperiment, getTraffic, postFeedback, putTraffic } from '../../src/routing/admin.js';
import { ManualClock } from '../../src/routing/clock.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import { TrafficStore } from '../../src/routing/store.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { context, FakePlane, request, seeded } from './fakes.js';

interface Backend {
  name: string;
  url(): Promise<string>;
}

let pg: PostgresServer;
let tmp: string;
let dbs = 0;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'inferd-traffic-'));
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
  await rm(tmp, { recursive: true, force: true });
});

const backends: Backend[] = [
  { name: 'sqlite', url: async () => `sqlite:${path.join(tmp, `r${++dbs}`, 'registry.db')}` },
  { name: 'postgres', url: async () => pg.createDatabase(`traffic_${++dbs}`) },
];

async function replica(url: string, clock: ManualClock): Promise<{ registry: Registry; traffic: TrafficService }> {
  const registry = await openRegistry(url, { home: tmp });
  const traffic = await TrafficService.open(new Map(), { store: TrafficStore.fromRegistry(registry), clock, refreshIntervalMs: 1000, random: seeded(3) });
  return { registry, traffic };
}

describe.each(backends)('traffic store on $name', (backend) => {
  it('keeps policies and canary state across a restart and shows them to a second replica', async () => {
    const url = await backend.url();
    const clock = new ManualClock(1_000_000);
    const a = await replica(url, clock);
    const b = await replica(url, clock);
    try {
      const put = await putTraffic({ traffic: a.traffic }, 'fraud', { policy: { canary: { baseline: 1, canary: 2, steps: [{ weight: 10, pause: '1s' }, { weight: 100 }] } } }, 'alice');
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ revision: 1, source: 'stored' });
      // The other replica picks it up at its next refresh.
      expect(b.traffic.view('fraud')).toBeUndefined();
      clock.advance(1000);
      await b.traffic.refresh();
      expect(b.traffic.view('fraud')).toMatchObject({ revision: 1, variants: [{ name: 'canary', weight: 10 }, { name: 'baseline', weight: 90 }] });

      const paused = await putTraffic({ traffic: a.traffic }, 'fraud', { action: 'pause', reason: 'lunch' }, 'alice');
      expect(paused.body).toMatchObject({ revision: 2, canary: { phase: 'paused', reason: 'lunch' } });
      // A stale compare-and-set loses with 409 and the current revision.
      const stale = await putTraffic({ traffic: b.traffic }, 'fraud', { policy: { split: { variants: [{ version: 1, weight: 100 }] } }, expected_revision: 1 }, 'bob');
      expect(stale).toMatchObject({ status: 409, body: { current: expect.any(Number) } });

      await a.traffic.close();
      await a.registry.close();
      const restarted = await replica(url, clock);
      try {
        expect(restarted.traffic.view('fraud')).toMatchObject({ revision: 2, canary: { phase: 'paused', weight: 10 } });
        const events = await TrafficStore.fromRegistry(restarted.registry).events('fraud');
        expect(events.map((e) => [e.action, e.actor])).toEqual([
          ['traffic.set', 'alice'],
          ['canary.started', 'alice'],
          ['canary.paused', 'alice'],
        ]);
        const removed = await putTraffic({ traffic: restarted.traffic }, 'fraud', { policy: null }, 'alice');
        expect(removed.body).toEqual({ model: 'fraud', policy: null });
        expect((await getTraffic({ traffic: restarted.traffic }, 'fraud')).status).toBe(404);
      } finally {
        await restarted.traffic.close();
        await restarted.registry.close();
      }
    } finally {
      await b.traffic.close();
      await b.registry.close();
    }
  });

  it('grants the controller lease to one holder, renews it, hands it over once it lapses or is released', async () => {
    const registry = await openRegistry(await backend.url(), { home: tmp });
    const store = TrafficStore.fromRegistry(registry);
    try {
      expect(await store.acquireLease('l', 'a', 1000, 500)).toBe(true);
      expect(await store.acquireLease('l', 'b', 1200, 500)).toBe(false);
      expect(await store.acquireLease('l', 'a', 1400, 500)).toBe(true);
      expect(await store.leaseHolder('l')).toEqual({ holder: 'a', expiresAt: 1900, acquiredAt: 1000 });
      expect(await store.acquireLease('l', 'b', 1899, 500)).toBe(false);
      expect(await store.acquireLease('l', 'b', 1900, 500)).toBe(true);
      expect(await store.leaseHolder('l')).toEqual({ holder: 'b', expiresAt: 2400, acquiredAt: 1900 });
      // Racing for a free lease: exactly one wins.
      await store.releaseLease('l', 'b');
      const race = await Promise.all(['c', 'd', 'e'].map((h) => store.acquireLease('l', h, 3000, 500)));
      expect(race.filter(Boolean)).toHaveLength(1);
      await store.releaseLease('l', 'nobody');
      expect((await store.leaseHolder('l'))?.holder).toMatch(/^[cde]$/);
    } finally {
      await registry.close();
    }
  });

  it('one replica drives a canary; the other takes over when it closes', async () => {
    const url = await backend.url();
    const clock = new ManualClock(1_000_000);
    const a = await replica(url, clock);
    const b = await replica(url, clock);
    try {
      expect([a.traffic.controller().leader, b.traffic.controller().leader]).toEqual([true, false]);
      await a.traffic.close();
      await b.traffic.renewLease();
      expect(b.traffic.controller().leader).toBe(true);
    } finally {
      await b.traffic.close();
      await a.registry.close();
      await b.registry.close();
    }
  });

  it("the leader's measurement adds the other replica's requests from its stored counters", async () => {
    const url = await backend.url();
    const clock = new ManualClock(1_000_000);
    const a = await replica(url, clock);
    const b = await replica(url, clock);
    try {
      const policy = { canary: { baseline: 1, canary: 2, steps: [{ weight: 50, pause: '1h' }, { weight: 100 }], analysis: { interval: '10s', min_requests: 1, max_p99_ms: 1000 } } };
      expect((await putTraffic({ traffic: a.traffic }, 'fraud', { policy }, 'alice')).status).toBe(200);
      await b.traffic.refresh();
      expect([a.traffic.controller().leader, b.traffic.controller().leader]).toEqual([true, false]);
      clock.advance(100);
      for (let i = 0; i < 30; i++) b.traffic.observe('fraud', '2', i < 3, 5 + i);
      for (let i = 0; i < 20; i++) b.traffic.observe('fraud', '1', false, 4);
      for (let i = 0; i < 7; i++) a.traffic.observe('fraud', '2', false, 2);
      clock.advance(1000);
      await b.traffic.flushCounters();
      clock.advance(8900);
      // The tick at 10 s reads the other replica's counters (asynchronously).
      for (let i = 0; i < 200 && (a.traffic.view('fraud')!.canary!.measurements.length === 0); i++) await new Promise((r) => setTimeout(r, 10));
      const m = a.traffic.view('fraud')!.canary!.measurements[0]!;
      expect(m).toMatchObject({ canary: { requests: 37, errors: 3 }, baseline: { requests: 20, errors: 0 } });
      // The default max_error_rate 5% judges the error rate of both replicas: 3 / 37, not a's 0 / 7.
      expect(m.outcome).toBe('failed');
      expect(m.checks.find((c) => c.name === 'error_rate')).toMatchObject({ value: 3 / 37, passed: false });
      // Percentiles over both: b's 5..34 ms from 5% buckets, a's seven 2 ms exactly.
      expect(m.canary!.p50Ms).toBeGreaterThan(10);
      expect(m.canary!.p99Ms).toBeGreaterThanOrEqual(34);
      expect(m.canary!.p99Ms).toBeLessThanOrEqual(34 * 1.05);
    } finally {
      await a.traffic.close();
      await b.traffic.close();
      await a.registry.close();
      await b.registry.close();
    }
  });

  it('skips a stored policy it cannot read, with a warning, and serves the rest', async () => {
    const url = await backend.url();
    const registry = await openRegistry(url, { home: tmp });
    const store = TrafficStore.fromRegistry(registry);
    await store.save('future', { split: { variants: [{ version: 1, weight: 100 }] }, teleport: {} } as never, {}, 0, 'newer-inferd');
    await store.save('fraud', { split: { variants: [{ version: 1, weight: 100 }] } }, {}, 0, 'alice');
    const warnings: string[] = [];
    const traffic = await TrafficService.open(new Map(), { store, refreshIntervalMs: 0, logger: { warn: (_o, msg) => void warnings.push(msg ?? '') } });
    try {
      expect(traffic.modelsWithPolicies()).toEqual(['fraud']);
      expect(warnings).toEqual(["traffic: the stored policy of model 'future' (revision 1) is not readable; keeping the current one"]);
    } finally {
      await traffic.close();
      await registry.close();
    }
  });

  it('counts a configured experiment from its first recorded request', async () => {
    const url = await backend.url();
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const registry = await openRegistry(url, { home: tmp });
    const configured = new Map([
      ['fraud', parseTrafficConfig({ split: { variants: [{ name: 'a', version: 1, weight: 50 }, { name: 'b', version: 2, weight: 50 }], experiment: { name: 'configured', baseline_rate: 0.1, mde: 0.5 } } }, 'fraud')],
    ]);
    const traffic = await TrafficService.open(configured, { store: TrafficStore.fromRegistry(registry), clock, refreshIntervalMs: 0 });
    try {
      const plane = new FakePlane({ '1': {}, '2': {} });
      const route = routingPolicy(traffic, plane.now);
      clock.advance(5000);
      for (let i = 0; i < 10; i++) await route.infer!(context('fraud'), request(), plane.next);
      clock.advance(3 * 86_400_000);
      const report = (await getExperiment({ traffic }, 'configured')).body as { startedAt: number; elapsedDays: number; variants: Array<{ served: number }> };
      expect(report.startedAt).toBe(Date.UTC(2026, 5, 1) + 5000);
      expect(report.elapsedDays).toBeCloseTo(3, 9);
      expect(report.variants.reduce((n, v) => n + v.served, 0)).toBe(10);
    } finally {
      await traffic.close();
      await registry.close();
    }
  });

  it('joins feedback to the variant that served the request, also on another replica, and reads the experiment', async () => {
    const url = await backend.url();
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const a = await replica(url, clock);
    const b = await replica(url, clock);
    try {
      const policy = {
        split: {
          variants: [
            { name: 'control', version: 1, weight: 50 },
            { name: 'treatment', version: 2, weight: 50 },
          ],
          sticky: { header: 'x-user-id' },
          experiment: { name: 'checkout', baseline_rate: 0.1, mde: 0.5, relative: true, min_days: 0 },
        },
      };
      expect((await putTraffic({ traffic: a.traffic }, 'fraud', { policy }, 'alice')).status).toBe(200);
      const plane = new FakePlane({ '1': {}, '2': {} });
      const route = routingPolicy(a.traffic, plane.now);
      const served = new Map<string, string>();
      // Treatment converts at 30%, control at 10%: a difference the test must find.
      for (let u = 0; u < 1600; u++) {
        const ctx = context('fraud', { 'x-user-id': `u${u}` }, `req-${u}`);
        await route.infer!(ctx, request(), plane.next);
        served.set(ctx.requestId, ctx.variant!);
      }
      await a.traffic.flush();
      clock.advance(1000);
      await b.traffic.refresh();
      let converted = 0;
      for (let u = 0; u < 1600; u++) {
        const variant = served.get(`req-${u}`)!;
        const outcome = (variant === 'treatment' ? u % 10 < 3 : u % 10 < 1) ? 1 : 0;
        converted += outcome;
        // Half the feedback reaches the replica that did not serve the request.
        const via = u % 2 === 0 ? a : b;
        const result = await postFeedback({ traffic: via.traffic }, 'fraud', { request_id: `req-${u}`, outcome: outcome === 1 });
        expect(result).toMatchObject({ status: 200, body: { variant, version: variant === 'control' ? '1' : '2' } });
      }
      expect(converted).toBeGreaterThan(0);
      const report = await getExperiment({ traffic: b.traffic }, 'checkout');
      expect(report.status).toBe(200);
      const body = report.body as { variants: Array<{ variant: string; outcomes: number; rate: number }>; decision: string; winner: string; requiredSamplePerGroup: number };
      const control = body.variants.find((v) => v.variant === 'control')!;
      const treatment = body.variants.find((v) => v.variant === 'treatment')!;
      expect(control.outcomes + treatment.outcomes).toBe(1600);
      expect(control.rate).toBeCloseTo(0.1, 1);
      expect(treatment.rate).toBeCloseTo(0.3, 1);
      expect(body.requiredSamplePerGroup).toBeLessThan(700);
      expect(body).toMatchObject({ decision: 'winner', winner: 'treatment' });

      // Unknown request, wrong model, malformed body.
      expect(await postFeedback({ traffic: a.traffic }, 'fraud', { request_id: 'nope', outcome: 1 })).toMatchObject({ status: 404 });
      expect(await postFeedback({ traffic: a.traffic }, 'other', { request_id: 'req-1', outcome: 1 })).toMatchObject({ status: 400 });
      expect(await postFeedback({ traffic: a.traffic }, 'fraud', { request_id: 'req-1' })).toMatchObject({ status: 400 });
      expect(await postFeedback({ traffic: a.traffic }, 'fraud', { request_id: 'req-1', outcome: 'yes' })).toMatchObject({ status: 400 });
      expect(await getExperiment({ traffic: a.traffic }, 'nothing')).toMatchObject({ status: 404 });
    } finally {
      await a.traffic.close();
      await b.traffic.close();
      await a.registry.close();
      await b.registry.close();
    }
  });
});
