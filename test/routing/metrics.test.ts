import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/routing/clock.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { registerTrafficMetrics } from '../../src/routing/metrics.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import { context, FakePlane, request, seeded } from './fakes.js';

describe('traffic metrics', () => {
  it('expose weights, the canary phase, the rollback alert counter and shadow comparisons', async () => {
    const clock = new ManualClock(0);
    const plane = new FakePlane({ '1': { latencyMs: 5, value: 1 }, '2': { latencyMs: 5, errorRate: 0.5, value: 1 }, '3': { value: 1.25 } });
    const traffic = await TrafficService.open(
      new Map([
        [
          'fraud',
          parseTrafficConfig(
            {
              canary: { baseline: 1, canary: 2, steps: [{ weight: 50, pause: '1s' }, { weight: 100 }], analysis: { interval: '1s', min_requests: 5, threshold: 1 } },
              shadow: { version: 3, percent: 100 },
            },
            'fraud',
          ),
        ],
      ]),
      { clock, random: seeded(1), runOnVersion: plane.next },
    );
    const registry = new Registry();
    registerTrafficMetrics(registry, traffic);
    let text = await registry.metrics();
    expect(text).toContain('inferd_traffic_variant_weight_percent{model="fraud",variant="canary",version="2"} 50');
    expect(text).toContain('inferd_traffic_canary_phase{model="fraud",phase="progressing"} 1');
    // No database: this replica is the only one, and drives its canaries.
    expect(text).toContain('inferd_traffic_controller_leader 1');
    expect(text).toContain('inferd_traffic_counters_dropped_total 0');
    const policy = routingPolicy(traffic, plane.now);
    for (let i = 0; i < 40; i++) await policy.infer!(context('fraud'), request(), plane.next).catch(() => undefined);
    clock.advance(1000);
    await new Promise((r) => setTimeout(r, 20));
    text = await registry.metrics();
    expect(text).toContain('inferd_traffic_canary_rollbacks_total{model="fraud"} 1');
    expect(text).toContain('inferd_traffic_events_total{model="fraud",action="canary.rolled_back"} 1');
    expect(text).toContain('inferd_traffic_canary_phase{model="fraud",phase="rolled_back"} 1');
    expect(text).toContain('inferd_traffic_variant_weight_percent{model="fraud",variant="canary",version="2"} 0');
    expect(text).toMatch(/inferd_shadow_requests_total\{model="fraud",version="3",result="completed"\} [1-9]/);
    expect(text).toContain('inferd_shadow_mean_absolute_error{model="fraud",version="3"} 0.25');
    await traffic.close();
  });
});
