/** The in-process tier on its own: bounded by bytes, evictions counted, keys canonical. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { cacheKey } from '../../src/cache/key.js';
import { PredictionCache } from '../../src/cache/prediction-cache.js';

describe('in-process tier', () => {
  it('stays within its byte bound and counts evictions', async () => {
    const registry = new Registry();
    const cache = new PredictionCache({ memoryBytes: 4096, redisTimeoutMs: 50, registry });
    for (let i = 0; i < 40; i++) {
      await cache.getOrCompute(`k${i}`, 'm', 0, async () => Buffer.alloc(400, i), () => undefined);
      expect(cache.memoryBytes).toBeLessThanOrEqual(4096);
    }
    expect(cache.memoryEntries).toBeLessThan(40);
    const text = await registry.metrics();
    expect(Number(/inferd_cache_evictions_total (\d+)/.exec(text)?.[1])).toBe(40 - cache.memoryEntries);
    expect(text).toMatch(/inferd_cache_misses_total\{model="m"\} 40/);
    // The most recent answers are the ones kept.
    let computed = false;
    await cache.getOrCompute('k39', 'm', 0, async () => ((computed = true), Buffer.alloc(1)), () => undefined);
    expect(computed).toBe(false);
    await cache.close();
  });

  it('keys: input order does not matter; shape, bytes, outputs and parameters do', () => {
    const a = { name: 'a', datatype: 'FP32' as const, shape: [1, 2], data: new Float32Array([1, 2]) };
    const b = { name: 'b', datatype: 'INT64' as const, shape: [1], data: new BigInt64Array([3n]) };
    const base = cacheKey('m', '1', { inputs: [a, b] });
    expect(cacheKey('m', '1', { inputs: [b, a] })).toBe(base);
    expect(cacheKey('m', '1', { inputs: [{ ...a, shape: [2, 1] }, b] })).not.toBe(base);
    expect(cacheKey('m', '1', { inputs: [{ ...a, data: new Float32Array([1, 2.0000002]) }, b] })).not.toBe(base);
    expect(cacheKey('m', '1', { inputs: [a, b], outputs: [{ name: 'y' }] })).not.toBe(base);
    expect(cacheKey('m', '1', { inputs: [a, b], parameters: { temperature: 0.5 } })).not.toBe(base);
    expect(cacheKey('m', '1', { inputs: [a, b], parameters: { priority: 2, binary_data_output: true } })).toBe(base);
    expect(cacheKey('m', '2', { inputs: [a, b] })).not.toBe(base);
    expect(cacheKey('m:1', '', { inputs: [a, b] })).not.toBe(cacheKey('m', '1:', { inputs: [a, b] }));
  });
});
