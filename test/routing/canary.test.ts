import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/routing/clock.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService, type TrafficEvent } from '../../src/routing/service.js';
import { context, FakePlane, request, seeded, type FakeVersion } from './fakes.js';

const INTERVAL = 5000;
const PER_INTERVAL = 400;

let service: TrafficService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

interface Run {
  traffic: TrafficService;
  clock: ManualClock;
  plane: FakePlane;
  events: TrafficEvent[];
  /** Sends one interval of traffic, then lets the interval pass; returns caller-visible failures. */
  interval(requests?: number): Promise<{ failures: number; canary: number }>;
}

async function start(canaryVersion: FakeVersion, analysis: Record<string, unknown> = {}): Promise<Run> {
  const clock = new ManualClock(1_000_000);
  const traffic = await TrafficService.open(
    new Map([
      [
        'fraud',
        parseTrafficConfig(
          {
            canary: {
              baseline: 1,
              canary: 2,
              steps: [{ weight: 5, pause: '10s' }, { weight: 25, pause: '10s' }, { weight: 50, pause: '10s' }, { weight: 100 }],
              analysis: { interval: '5s', min_requests: 10, failure_limit: 1, max_error_rate: 0.02, max_p99_ms: 200, ...analysis },
            },
          },
          'fraud',
        ),
      ],
    ]),
    { clock, random: seeded(7) },
  );
  service = traffic;
  const plane = new FakePlane({ '1': { latencyMs: 20 }, '2': canaryVersion });
  const policy = routingPolicy(traffic, plane.now);
  const events: TrafficEvent[] = [];
  traffic.onEvent((e) => events.push(e));
  return {
    traffic,
    clock,
    plane,
    events,
    async interval(requests = PER_INTERVAL) {
      let failures = 0;
      let canary = 0;
      const begin = clock.now();
      for (let i = 0; i < requests; i++) {
        const ctx = context('fraud');
        try {
          await policy.infer!(ctx, request(), plane.next);
        } catch {
          failures += 1;
        }
        if (ctx.version === '2') canary += 1;
        clock.advance((INTERVAL - 1) / requests);
      }
      // The analysis timer fires at the end of the interval.
      clock.advance(begin + INTERVAL - clock.now());
      return { failures, canary };
    },
  };
}

describe('canary', () => {
  it('promotes a good version through every step, each step measured before it advances', async () => {
    const run = await start({ latencyMs: 20 });
    const weights: number[] = [run.traffic.view('fraud')!.variants.find((v) => v.name === 'canary')!.weight];
    for (let i = 0; i < 12 && run.traffic.view('fraud')!.canary!.phase !== 'promoted'; i++) {
      await run.interval();
      const w = run.traffic.view('fraud')!.variants.find((v) => v.name === 'canary')!.weight;
      if (w !== weights[weights.length - 1]) weights.push(w);
    }
    const view = run.traffic.view('fraud')!;
    expect(view.canary!.phase).toBe('promoted');
    expect(weights).toEqual([5, 25, 50, 100]);
    expect(view.canary!.failed).toBe(0);
    expect(run.events.map((e) => e.action)).toEqual(['canary.step', 'canary.step', 'canary.promoted']);
    // Promoted: every request goes to the canary.
    const after = await run.interval(100);
    expect(after.canary).toBe(100);
  });

  it('rolls an erroring version back at the measurement after the failure limit, then sends it nothing', async () => {
    const run = await start({ latencyMs: 20, errorRate: 0.3 });
    const first = await run.interval();
    expect(run.traffic.view('fraud')!.canary).toMatchObject({ phase: 'progressing', failed: 1 });
    const second = await run.interval();
    const view = run.traffic.view('fraud')!;
    expect(view.canary).toMatchObject({ phase: 'rolled_back', weight: 0, failed: 2 });
    expect(view.canary!.reason).toMatch(/2 failed measurements \(failure_limit 1\); last: error_rate 0\.[23][0-9]* beyond 0\.02/);
    expect(view.variants.find((v) => v.name === 'canary')!.weight).toBe(0);
    expect(run.events.map((e) => e.action)).toEqual(['canary.rolled_back']);
    // Callers saw only the failures of the canary's 5% share during the two measured intervals.
    expect(first.failures + second.failures).toBeLessThanOrEqual(Math.ceil(0.3 * (first.canary + second.canary)) + 1);
    expect(first.failures + second.failures).toBeGreaterThan(0);
    const after = await run.interval();
    expect(after).toEqual({ failures: 0, canary: 0 });
    expect(run.traffic.view('fraud')!.canary!.measurements.length).toBe(2);
  });

  it('rolls a slow version back on p99 latency', async () => {
    const run = await start({ latencyMs: 450 });
    await run.interval();
    await run.interval();
    const view = run.traffic.view('fraud')!;
    expect(view.canary!.phase).toBe('rolled_back');
    expect(view.canary!.reason).toMatch(/latency_p99_ms 450 beyond 200/);
  });

  it("rolls back on the first failure with Flagger's threshold 1", async () => {
    const run = await start({ latencyMs: 20, errorRate: 0.5 }, { failure_limit: undefined, threshold: 1 });
    await run.interval();
    expect(run.traffic.view('fraud')!.canary!.phase).toBe('rolled_back');
  });

  it('compares with the baseline when asked (error rate increase, latency ratio)', async () => {
    const run = await start({ latencyMs: 60 }, { max_error_rate: undefined, max_p99_ms: undefined, max_error_rate_increase: 0.01, max_latency_ratio: 2 });
    await run.interval();
    await run.interval();
    const view = run.traffic.view('fraud')!;
    expect(view.canary!.phase).toBe('rolled_back');
    expect(view.canary!.reason).toMatch(/latency_p95_ratio 3 beyond 2/);
  });

  it('pauses when measurements stay inconclusive, and resumes on request', async () => {
    const run = await start({ latencyMs: 20 }, { min_requests: 1000, inconclusive_limit: 2 });
    for (let i = 0; i < 3; i++) await run.interval();
    let view = run.traffic.view('fraud')!;
    expect(view.canary).toMatchObject({ phase: 'paused', pausedBy: 'analysis', inconclusive: 3, weight: 5 });
    expect(run.events.map((e) => e.action)).toEqual(['canary.paused']);
    view = await run.traffic.act('fraud', 'resume', 'ops');
    expect(view.canary).toMatchObject({ phase: 'progressing', inconclusive: 0 });
  });

  it('takes operator actions: pause holds the weight, promote skips a pause, abort sends nothing to the canary', async () => {
    const run = await start({ latencyMs: 20 });
    await run.traffic.act('fraud', 'pause', 'ops');
    await run.interval();
    await run.interval();
    await run.interval();
    expect(run.traffic.view('fraud')!.canary).toMatchObject({ phase: 'paused', weight: 5 });
    await run.traffic.act('fraud', 'promote', 'ops');
    expect(run.traffic.view('fraud')!.canary).toMatchObject({ phase: 'progressing', weight: 25 });
    await run.traffic.act('fraud', 'abort', 'ops', 'not today');
    expect(run.traffic.view('fraud')!.canary).toMatchObject({ phase: 'aborted', weight: 0, reason: 'not today' });
    await expect(run.traffic.act('fraud', 'promote', 'ops')).rejects.toThrow(/is aborted; start a new one/);
    expect((await run.interval()).canary).toBe(0);
  });

  it('promote_full goes straight to 100%', async () => {
    const run = await start({ latencyMs: 20 });
    await run.traffic.act('fraud', 'promote_full', 'ops');
    expect(run.traffic.view('fraud')!.canary).toMatchObject({ phase: 'promoted', weight: 100 });
  });
});

describe('blue-green', () => {
  it('switches atomically with no failed request, and rolls back the same way', async () => {
    const clock = new ManualClock(0);
    const traffic = await TrafficService.open(new Map([['fraud', parseTrafficConfig({ blue_green: { active: 1, standby: 2, keep_warm: '5m' } }, 'fraud')]]), { clock });
    service = traffic;
    const plane = new FakePlane({ '1': { latencyMs: 1 }, '2': { latencyMs: 1 } });
    const policy = routingPolicy(traffic, plane.now);
    expect(traffic.requiredVersions('fraud')).toEqual(['1', '2']);
    const served: string[] = [];
    let failures = 0;
    let switched = false;
    // Continuous load: requests keep being issued while the switch and the rollback happen.
    const load = (async () => {
      for (let i = 0; i < 3000; i++) {
        const ctx = context('fraud');
        await policy.infer!(ctx, request(), plane.next).catch(() => (failures += 1));
        served.push(ctx.version!);
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    await new Promise((r) => setImmediate(r));
    await traffic.act('fraud', 'switch', 'ops');
    switched = true;
    expect(traffic.view('fraud')!.variants).toEqual([{ name: 'active', version: '2', weight: 100 }]);
    expect(traffic.view('fraud')!.blueGreen).toMatchObject({ previous: '1', warmUntil: 300_000 });
    expect(traffic.requiredVersions('fraud')).toEqual(['2', '1']);
    await traffic.act('fraud', 'rollback', 'ops');
    await load;
    expect(switched).toBe(true);
    expect(failures).toBe(0);
    expect(traffic.view('fraud')!.variants).toEqual([{ name: 'active', version: '1', weight: 100 }]);
    // Each request went to exactly one version, and the sequence is 1...1 2...2 1...1 (no mixing).
    const changes = served.filter((v, i) => i > 0 && v !== served[i - 1]).length;
    expect(changes).toBeLessThanOrEqual(2);
    clock.advance(300_001);
    expect(traffic.requiredVersions('fraud')).toEqual(['1']);
    await expect(traffic.act('fraud', 'pause', 'ops')).rejects.toThrow(/applies to a canary policy; model 'fraud' has a blue_green policy/);
  });
});

describe('canary measurement errors', () => {
  it('rolls back after more than consecutive_error_limit measurements in a row could not be taken', async () => {
    const { CanaryController, initialCanaryState } = await import('../../src/routing/canary.js');
    const { VersionObservations } = await import('../../src/routing/observations.js');
    const policy = parseTrafficConfig({ canary: { baseline: 1, canary: 2, analysis: { consecutive_error_limit: 2 } } }, 'm').routing;
    if (policy?.kind !== 'canary') throw new Error('not a canary');
    const broken = new VersionObservations();
    broken.summary = () => {
      throw new Error('observations unavailable');
    };
    const controller = new CanaryController('m', policy, initialCanaryState(policy, 0), broken);
    controller.tick(60_000);
    controller.tick(120_000);
    expect(controller.state).toMatchObject({ phase: 'progressing', consecutiveErrors: 2 });
    controller.tick(180_000);
    expect(controller.state).toMatchObject({ phase: 'rolled_back', weight: 0 });
    expect(controller.state.reason).toMatch(/3 measurements in a row could not be taken \(consecutive_error_limit 2\): observations unavailable/);
  });
});
