/** Rendering of a benchmark report: a table for people, CSV and JSON for tools. */
import type { BenchReport, ProgressEvent, StepResult } from './runner.js';

export function ms(us: number): string {
  if (us >= 100_000) return (us / 1000).toFixed(0);
  if (us >= 10_000) return (us / 1000).toFixed(1);
  return (us / 1000).toFixed(2);
}

function rate(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function stepLabel(s: StepResult): string {
  return s.concurrency !== undefined ? String(s.concurrency) : `${s.requestRate}/s`;
}

function errorsText(s: StepResult): string {
  if (s.errorCount === 0) return '0';
  return Object.entries(s.errors)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
}

/** Fixed-width table: one row per load step. */
export function formatTable(r: BenchReport): string {
  const hasServer = r.steps.some((s) => s.server);
  const openLoop = r.mode === 'request-rate';
  const head = [
    r.mode === 'concurrency' ? 'concurrency' : 'rate',
    'req/s',
    ...(r.inferencesPerRequest !== 1 ? ['infer/s'] : []),
    'p50 ms',
    'p90 ms',
    'p95 ms',
    'p99 ms',
    'max ms',
    'errors',
    ...(openLoop ? ['late'] : []),
    ...(hasServer ? ['queue ms', 'compute ms', 'overhead ms'] : []),
    'stable',
  ];
  const rows = r.steps.map((s) => [
    stepLabel(s),
    rate(s.throughput),
    ...(r.inferencesPerRequest !== 1 ? [rate(s.inferencesPerSec)] : []),
    ms(s.latency.p50Us),
    ms(s.latency.p90Us),
    ms(s.latency.p95Us),
    ms(s.latency.p99Us),
    ms(s.latency.maxUs),
    errorsText(s),
    ...(openLoop ? [String(s.lateSends)] : []),
    ...(hasServer
      ? s.server
        ? [ms(s.server.queueUs), ms(s.server.computeUs), ms(s.overheadUs ?? 0)]
        : ['-', '-', '-']
      : []),
    s.stable ? 'yes' : `no (${s.trials})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const samples = r.steps.flatMap((s) => Object.entries(s.errorSamples));
  const seen = new Set<string>();
  for (const [k, v] of samples) {
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(`error ${k}: ${v.replace(/\s+/g, ' ').slice(0, 200)}`);
  }
  return out.join('\n') + '\n';
}

const CSV_COLUMNS = [
  'mode',
  'concurrency',
  'request_rate',
  'throughput_rps',
  'inferences_per_sec',
  'p50_us',
  'p90_us',
  'p95_us',
  'p99_us',
  'max_us',
  'mean_us',
  'successes',
  'errors',
  'error_detail',
  'sent',
  'late_sends',
  'server_queue_us',
  'server_compute_input_us',
  'server_compute_infer_us',
  'server_compute_output_us',
  'overhead_us',
  'windows',
  'trials',
  'stable',
] as const;

function csvCell(v: string | number | undefined): string {
  if (v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v;
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One header row, then one row per load step. */
export function toCsv(r: BenchReport): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const s of r.steps) {
    const row: (string | number | undefined)[] = [
      r.mode,
      s.concurrency,
      s.requestRate,
      s.throughput,
      s.inferencesPerSec,
      s.latency.p50Us,
      s.latency.p90Us,
      s.latency.p95Us,
      s.latency.p99Us,
      s.latency.maxUs,
      s.latency.meanUs,
      s.successes,
      s.errorCount,
      Object.entries(s.errors)
        .map(([k, v]) => `${k}:${v}`)
        .join(' '),
      s.sent,
      s.lateSends,
      s.server?.queueUs,
      s.server?.computeInputUs,
      s.server?.computeInferUs,
      s.server?.computeOutputUs,
      s.overheadUs,
      s.measuredWindows,
      s.trials,
      s.stable ? 'true' : 'false',
    ];
    lines.push(row.map(csvCell).join(','));
  }
  return lines.join('\n') + '\n';
}

/** One status line for stderr. */
export function formatProgress(e: ProgressEvent): string {
  const where = e.window === 0 ? 'warm-up' : `window ${e.window}/${e.windowLimit}`;
  const p99 = e.finished ? `  p99 ${ms(e.finished.p99Us)} ms` : '';
  const errs = e.errors > 0 ? `  errors ${e.errors}` : '';
  return `[${e.stepIndex + 1}/${e.stepCount}] ${e.step}  ${where}  ${rate(e.throughput)} req/s${p99}${errs}`;
}
