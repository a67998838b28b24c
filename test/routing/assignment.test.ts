import { describe, expect, it } from 'vitest';
import { assignByKey, assignRandomly, hashPoint } from '../../src/routing/assignment.js';
import { seeded } from './fakes.js';

const N = 10_000;

function shares(pick: (i: number) => string | undefined, names: string[]): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (let i = 0; i < N; i++) counts[pick(i)!]! += 1;
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, (100 * v) / N]));
}

describe('variant assignment', () => {
  const three = [
    { name: 'control', weight: 50 },
    { name: 'treatment_a', weight: 30 },
    { name: 'treatment_b', weight: 20 },
  ];

  it('splits keyed requests within 2 points of the weights over 10,000 requests', () => {
    const got = shares((i) => assignByKey(`user-${i}`, three)?.name, three.map((v) => v.name));
    for (const v of three) expect(Math.abs(got[v.name]! - v.weight)).toBeLessThanOrEqual(2);
  });

  it('splits unkeyed requests within 2 points of the weights over 10,000 requests', () => {
    const random = seeded(42);
    const got = shares(() => assignRandomly(three, random)?.name, three.map((v) => v.name));
    for (const v of three) expect(Math.abs(got[v.name]! - v.weight)).toBeLessThanOrEqual(2);
  });

  it('gives the same key the same variant every time (100% sticky), whatever the order of the variants', () => {
    const reversed = [...three].reverse();
    for (let i = 0; i < N; i++) {
      const first = assignByKey(`user-${i}`, three)!.name;
      expect(assignByKey(`user-${i}`, three)!.name).toBe(first);
      expect(assignByKey(`user-${i}`, reversed)!.name).toBe(first);
    }
  });

  it('moving a canary from 10% to 20% moves only keys into the canary, about 10% of them', () => {
    const before = [
      { name: 'canary', weight: 10 },
      { name: 'baseline', weight: 90 },
    ];
    const after = [
      { name: 'canary', weight: 20 },
      { name: 'baseline', weight: 80 },
    ];
    let moved = 0;
    let canaryAfter = 0;
    for (let i = 0; i < N; i++) {
      const a = assignByKey(`user-${i}`, before)!.name;
      const b = assignByKey(`user-${i}`, after)!.name;
      if (b === 'canary') canaryAfter += 1;
      if (a !== b) {
        moved += 1;
        expect([a, b]).toEqual(['baseline', 'canary']);
      }
    }
    expect(Math.abs((100 * canaryAfter) / N - 20)).toBeLessThanOrEqual(2);
    expect(Math.abs((100 * moved) / N - 10)).toBeLessThanOrEqual(2);
  });

  it('adding a variant takes keys only into the new variant', () => {
    const two = [
      { name: 'a', weight: 50 },
      { name: 'b', weight: 50 },
    ];
    const withC = [...two, { name: 'c', weight: 25 }];
    for (let i = 0; i < N; i++) {
      const before = assignByKey(`k${i}`, two)!.name;
      const after = assignByKey(`k${i}`, withC)!.name;
      if (after !== before) expect(after).toBe('c');
    }
  });

  it('never picks a variant of weight 0 and returns nothing when all weights are 0', () => {
    const v = [
      { name: 'off', weight: 0 },
      { name: 'on', weight: 100 },
    ];
    for (let i = 0; i < 1000; i++) expect(assignByKey(`k${i}`, v)!.name).toBe('on');
    expect(assignByKey('k', [{ name: 'x', weight: 0 }])).toBeUndefined();
    expect(assignRandomly([{ name: 'x', weight: 0 }])).toBeUndefined();
  });

  it('hashes into the open interval (0, 1)', () => {
    for (let i = 0; i < 1000; i++) {
      const u = hashPoint(String(i), 'v');
      expect(u).toBeGreaterThan(0);
      expect(u).toBeLessThan(1);
    }
  });
});
