import { describe, expect, it } from 'vitest';
import { bucketLatency, emptyPeerWindow, latencyBucket, VersionObservations } from '../../src/routing/observations.js';

describe('observations with other replicas counters', () => {
  it('puts a latency in the 5%-wide bucket whose upper bound is the first at or above it', () => {
    for (const ms of [0.011, 0.37, 1, 12.5, 250, 9000]) {
      const b = latencyBucket(ms);
      expect(bucketLatency(b)).toBeGreaterThanOrEqual(ms * (1 - 1e-9));
      expect(bucketLatency(b - 1)).toBeLessThan(ms);
    }
    expect(latencyBucket(0)).toBe(0);
  });

  it('merges counts, error rates, quality and percentiles of this replica and the others', () => {
    const o = new VersionObservations({ now: () => 0 });
    for (let i = 1; i <= 50; i++) o.recordRequest('m', '2', i === 1, i, 100);
    o.recordOutcome('m', '2', 1, 100);
    const peers = emptyPeerWindow();
    peers.requests = 50;
    peers.errors = 3;
    peers.qualitySamples = 3;
    peers.qualitySum = 0;
    // 50 requests of the other replica, all at about 1000 ms: the upper half of the merged ranks.
    peers.latencies.set(latencyBucket(1000), 50);
    const s = o.summary('m', '2', 0, 1000, peers);
    expect(s).toMatchObject({ requests: 100, errors: 4, errorRate: 0.04, qualitySamples: 4, quality: 0.25 });
    expect(s.p50Ms).toBe(50);
    expect(s.p95Ms).toBeCloseTo(bucketLatency(latencyBucket(1000)), 10);
    expect(s.p95Ms).toBeLessThan(1000 * 1.05);
    expect(o.summary('m', '2', 0, 1000)).toMatchObject({ requests: 50, p50Ms: 25 });
  });
});
