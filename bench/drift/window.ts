/**
 * Cost of drift on one window: 10,000 rows × 30 features against a reference profile, computed
 * inline and in the drift worker pool, with the event loop's delay measured while the pool works.
 *
 *   npx tsx bench/drift/window.ts [--runs 5]
 *
 * Two references: 50,000 rows (Evidently's default for that size: normalised Wasserstein on a
 * 5,000-value reservoir) and 1,000 rows (KS with exact p-values).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { computeDrift, type DriftMethod } from '../../src/monitoring/drift.js';
import { tableFromCells, type Table } from '../../src/monitoring/dataset.js';
import { DriftComputePool } from '../../src/monitoring/pool.js';
import { buildDriftProfile, seededRandom } from '../../src/monitoring/profile.js';
import { DriftWindow } from '../../src/monitoring/window.js';

const FEATURES = 30;
const ROWS = 10_000;
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

const random = seededRandom(1);
function gaussian(): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
function table(rows: number, shift: number): Table {
  const names = Array.from({ length: FEATURES }, (_, i) => `f${i}`);
  const cells = Array.from({ length: rows }, () => names.map((_, i) => gaussian() * (1 + i / 10) + (i < 5 ? shift : 0)));
  return tableFromCells(names, cells);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Fills a window row by row (as a capture policy would) and returns it closed, with the cost per row. */
function filledWindow(current: Table): { table: Table; nsPerRow: number } {
  const names = current.columns.map((c) => c.name);
  const w = new DriftWindow({ inputs: names, maxRows: ROWS });
  const row = new Float64Array(FEATURES);
  const start = performance.now();
  let closed;
  for (let r = 0; r < current.rows; r++) {
    for (let f = 0; f < FEATURES; f++) row[f] = (current.columns[f]!.values as Float64Array)[r]!;
    closed = w.add(row) ?? closed;
  }
  const elapsed = performance.now() - start;
  return { table: closed!.table, nsPerRow: (elapsed * 1e6) / current.rows };
}

const pool = new DriftComputePool();
const lines: string[] = [];
for (const [label, referenceRows, method] of [
  ['reference 50,000 rows (Wasserstein)', 50_000, undefined],
  ['reference 1,000 rows (KS, exact p)', 1_000, undefined],
  ['reference 50,000 rows, PSI', 50_000, 'psi'],
] as Array<[string, number, DriftMethod | undefined]>) {
  const profile = buildDriftProfile(table(referenceRows, 0));
  const current = table(ROWS, 0.3);
  const { table: windowTable, nsPerRow } = filledWindow(current);
  const options = method ? { method } : {};
  computeDrift(profile, windowTable, options); // warm-up
  const inline: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    computeDrift(profile, windowTable, options);
    inline.push(performance.now() - t);
  }
  await pool.compute(profile, filledWindow(current).table, options); // warm-up the worker
  const threaded: number[] = [];
  // windows filled beforehand, so the delay measured is only what the pool leaves on this thread
  const copies = Array.from({ length: RUNS }, () => filledWindow(current).table);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const ticker = setInterval(() => undefined, 1);
  delay.enable();
  for (let i = 0; i < RUNS; i++) {
    const copy = copies[i]!;
    const t = performance.now();
    await pool.compute(profile, copy, options);
    threaded.push(performance.now() - t);
  }
  delay.disable();
  clearInterval(ticker);
  const report = computeDrift(profile, windowTable, options);
  lines.push(
    `| ${label} | ${report.columns[0]!.method} | ${median(inline).toFixed(1)} | ${median(threaded).toFixed(1)} | ${(delay.max / 1e6).toFixed(1)} | ${nsPerRow.toFixed(0)} | ${report.dataset.driftedColumns.length}/30 |`,
  );
}
await pool.close();
console.log(`${ROWS.toLocaleString('en')} rows × ${FEATURES} features, median of ${RUNS} runs, Node ${process.version}`);
console.log('| reference | method | inline (ms) | worker pool, round trip (ms) | event-loop max delay during pool runs (ms) | window.add (ns/row) | drifted |');
console.log('|---|---|---|---|---|---|---|');
for (const l of lines) console.log(l);
