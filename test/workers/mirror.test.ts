/**
 * The counters a shadow version's worker threads fill and the main thread reads: one buffer of
 * shared memory, the same one a worker would see.
 */
import { describe, expect, it } from 'vitest';
import { claimRing, MIRROR_LATENCY_SAMPLES, MirrorCounters, mirrorChannelName, type MirrorOutcome } from '../../src/workers/mirror.js';
import { emptyComparison } from '../../src/routing/shadow-compare.js';

function outcome(completed: number, latencies: Array<[number, number]> = []): MirrorOutcome {
  return { completed, errors: 0, timeouts: 0, comparison: { ...emptyComparison(), values: 2 * completed, absErrorSum: completed, maxAbsError: 0.5 }, latencies };
}

describe('mirror counters', () => {
  it('adds what a worker ran, seen through another view of the same memory', () => {
    const main = new MirrorCounters();
    const worker = new MirrorCounters(main.buffer);
    expect(worker.started(11, 3, 1000)).toBe(true);
    expect(main.progress()).toEqual({ done: 0, running: 3 });
    worker.finished(11, 3, outcome(3, [[0.2, 1.5]]));
    const s = main.snapshot();
    expect(s).toMatchObject({ done: 3, running: 0, completed: 3, errors: 0, timeouts: 0 });
    expect(s.comparison).toMatchObject({ values: 6, absErrorSum: 3, maxAbsError: 0.5 });
    expect(s.latencies).toEqual([[0.2, 1.5]]);
  });

  it('fails the jobs of a run past the limit once, and ignores that run if it ends after all', () => {
    const counters = new MirrorCounters();
    counters.started(7, 2, 1000);
    counters.started(8, 1, 1900);
    expect(counters.overdue(2000, 500)).toEqual([7]);
    expect(counters.overdue(2001, 500)).toEqual([]);
    expect(counters.snapshot()).toMatchObject({ done: 2, running: 1, errors: 2, completed: 0 });
    // The stopped worker's run finishing anyway would count its jobs twice.
    counters.finished(7, 2, outcome(2));
    counters.finished(8, 1, outcome(1));
    expect(counters.snapshot()).toMatchObject({ done: 3, running: 0, errors: 2, completed: 1 });
  });

  it('never makes the main thread wait for a worker holding the lock', () => {
    const counters = new MirrorCounters();
    counters.started(7, 2, 1000);
    const lock = new Int32Array(counters.buffer, 0, 1);
    Atomics.store(lock, 0, 1); // a worker in the middle of adding
    expect(counters.overdue(5000, 500)).toEqual([]);
    expect(counters.progress()).toEqual({ done: 0, running: 2 });
    expect(counters.snapshot()).toMatchObject({ running: 2, errors: 0 });
    Atomics.store(lock, 0, 0);
    expect(counters.overdue(5000, 500)).toEqual([7]);
  });

  it('counts windows no worker runs, and keeps the latest latency samples', () => {
    const counters = new MirrorCounters();
    counters.skipped(4, { ...outcome(0), timeouts: 4 });
    for (let i = 0; i < MIRROR_LATENCY_SAMPLES + 10; i++) counters.skipped(1, outcome(1, [[i, i]]));
    const s = counters.snapshot();
    expect(s).toMatchObject({ done: 4 + MIRROR_LATENCY_SAMPLES + 10, timeouts: 4, completed: MIRROR_LATENCY_SAMPLES + 10 });
    expect(s.latencies).toHaveLength(MIRROR_LATENCY_SAMPLES);
    expect(Math.min(...s.latencies.map((l) => l[0]))).toBe(10);
  });

  it('sizes the claim ring above the bound, a power of two', () => {
    expect(claimRing(258).length).toBe(512);
    expect(claimRing(10).length).toBe(64);
    expect(mirrorChannelName('m', '2', '/repo/m/2')).toBe('inferd.mirror:m:2:/repo/m/2');
  });
});
