import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO_ROOT } from '../support/paths.js';
import { rng } from '../../src/loadgen/inputs.js';
import { venvPython } from '../support/python.js';

/** Deterministic uniform generator (the load generator's seeded one) so the grid is the same on every run. */
export const seeded = rng;

/** Normal sample by Box-Muller. */
export function normalSample(random: () => number, n: number, mean = 0, std = 1): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const u = 1 - random();
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    out.push(mean + std * r * Math.cos(2 * Math.PI * v));
    if (out.length < n) out.push(mean + std * r * Math.sin(2 * Math.PI * v));
  }
  return out;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Runs test/stats/reference.py (scipy/statsmodels in the test venv) on a list of cases. */
export function scipyReference<T = Record<string, Json>>(cases: ReadonlyArray<Record<string, unknown>>): T[] {
  const result = spawnSync(venvPython(), [join(REPO_ROOT, 'test', 'stats', 'reference.py')], {
    input: JSON.stringify(cases),
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`reference.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as T[];
}

/** Reads a number the reference wrote ("nan"/"inf" travel as strings). */
export function value(v: unknown): number {
  if (v === 'nan') return Number.NaN;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return v as number;
}

/** |actual - expected| ≤ rel·|expected| (exact equality for 0, ∞ and NaN). */
export function expectRelClose(actual: number, expected: unknown, label: string, rel = 1e-9): void {
  const e = value(expected);
  if (Number.isNaN(e)) {
    expect(actual, label).toBeNaN();
    return;
  }
  if (!Number.isFinite(e) || e === 0) {
    expect(actual, label).toBe(e);
    return;
  }
  const error = Math.abs(actual - e) / Math.abs(e);
  if (!(error <= rel)) throw new Error(`${label}: got ${actual}, scipy ${e} (relative error ${error.toExponential(2)})`);
}
