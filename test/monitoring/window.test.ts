import { afterAll, describe, expect, it } from 'vitest';
import { computeDrift } from '../../src/monitoring/drift.js';
import { readTable } from '../../src/monitoring/dataset.js';
import { DriftComputePool } from '../../src/monitoring/pool.js';
import { buildDriftProfile } from '../../src/monitoring/profile.js';
import { DriftWindow, type ClosedWindow } from '../../src/monitoring/window.js';
import { BC_TEST, BC_TRAIN, SHIFTS } from './support.js';

describe('drift windows', () => {
  it('tumbles by count and keeps every row when they fit', () => {
    const closed: ClosedWindow[] = [];
    const w = new DriftWindow({ inputs: ['a', 'b'], outputs: ['label'], maxRows: 3, onClose: (c) => closed.push(c) });
    expect(w.add([1, 2], [0])).toBeUndefined();
    w.add([3, 4], [1]);
    const third = w.add([5, 6], [0]);
    expect(third).toBeDefined();
    expect(closed).toHaveLength(1);
    expect(third!.reason).toBe('rows');
    expect(third!.table.columns.map((c) => [c.name, Array.from(c.values as Float64Array)])).toEqual([
      ['a', [1, 3, 5]],
      ['b', [2, 4, 6]],
      ['label', [0, 1, 0]],
    ]);
    expect(w.seen).toBe(0);
    expect(w.flush()).toBeUndefined();
  });

  it('tumbles by time, on add and on tick', () => {
    let now = 1000;
    const w = new DriftWindow({ inputs: ['x'], maxRows: 100, maxAgeMs: 60_000, now: () => now });
    w.add([1]);
    w.add([2]);
    now += 60_000;
    const closed = w.add([3]);
    expect(closed).toMatchObject({ reason: 'age', seen: 2, kept: 2 });
    expect(w.seen).toBe(1);
    expect(w.tick()).toBeUndefined();
    now += 60_000;
    expect(w.tick()).toMatchObject({ reason: 'age', seen: 1 });
  });

  it('keeps a bounded uniform reservoir when more rows arrive than it holds', () => {
    const w = new DriftWindow({ inputs: ['x'], maxRows: 100_000, capacity: 1000 });
    for (let i = 0; i < 50_000; i++) w.add([i]);
    const closed = w.flush()!;
    expect(closed).toMatchObject({ seen: 50_000, kept: 1000, reason: 'flush' });
    const values = Array.from(closed.table.columns[0]!.values as Float64Array);
    expect(new Set(values).size).toBe(1000);
    // uniform over the stream: the mean of the kept indices is near the middle (sd ≈ 456)
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.abs(mean - 25_000)).toBeLessThan(2500);
    expect(values.some((v) => v >= 45_000)).toBe(true);
  });

  it('takes a batch laid out row-major and rejects ragged input', () => {
    const w = new DriftWindow({ inputs: ['a', 'b'], outputs: ['p'], maxRows: 10 });
    w.addBatch(Float32Array.from([1, 2, 3, 4, 5, 6]), [0.1, 0.2, 0.3]);
    expect(w.seen).toBe(3);
    expect(() => w.addBatch([1, 2, 3])).toThrow(/not a whole number of 2-feature rows/);
    expect(() => w.add([1])).toThrow(/needs 2 input values/);
    expect(Array.from(w.flush()!.table.columns[2]!.values as Float64Array)).toEqual([0.1, 0.2, 0.3].map(Number));
  });
});

describe('drift off the event loop', () => {
  const pool = new DriftComputePool();
  afterAll(() => pool.close());

  it('a window of served breast_cancer rows computed in a worker equals the inline result and flags the shifted features', async () => {
    const train = await readTable(BC_TRAIN);
    const test = await readTable(BC_TEST);
    const profile = buildDriftProfile(train, { outputs: ['label'] });
    const inputs = test.columns.filter((c) => c.name !== 'label');
    const names = inputs.map((c) => c.name);
    const window = new DriftWindow({ inputs: names, outputs: ['label'], maxRows: test.rows });
    let closed: ClosedWindow | undefined;
    const label = test.columns.find((c) => c.name === 'label')!.values as Float64Array;
    for (let r = 0; r < test.rows; r++) {
      const row = inputs.map((c) => {
        const v = (c.values as Float64Array)[r]!;
        return SHIFTS[c.name] ? SHIFTS[c.name]!(v) : v;
      });
      closed = window.add(Float32Array.from(row), [label[r]!]) ?? closed;
    }
    expect(closed).toBeDefined();
    const inline = computeDrift(profile, closed!.table);
    const threaded = await pool.compute(profile, closed!.table);
    expect(threaded.columns.map((c) => [c.name, c.score, c.drifted])).toEqual(inline.columns.map((c) => [c.name, c.score, c.drifted]));
    expect(threaded.dataset.driftedColumns.sort()).toEqual(Object.keys(SHIFTS).sort());
  });

  it('sends a profile to the worker once, then names it; a second profile works alongside', async () => {
    const train = await readTable(BC_TRAIN);
    const a = buildDriftProfile(train, { outputs: ['label'] });
    const b = buildDriftProfile(train, { exclude: ['label'] });
    const test = await readTable(BC_TEST);
    const fresh = () => ({ rows: test.rows, columns: test.columns.map((c) => ({ ...c, values: (c.values as Float64Array).slice() })) }) as typeof test;
    const expected = computeDrift(a, test).columns.map((c) => c.score);
    for (let i = 0; i < 3; i++) expect((await pool.compute(a, fresh())).columns.map((c) => c.score)).toEqual(expected);
    expect((await pool.compute(b, fresh())).columns).toHaveLength(30);
    expect((await pool.compute(a, fresh())).columns).toHaveLength(31);
  });
});
