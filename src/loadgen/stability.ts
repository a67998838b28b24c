/**
 * When to stop measuring a step: the last `span` windows agree on throughput and p99 latency
 * within a percentage of their mean, as perf_analyzer decides it.
 */

export interface WindowFigures {
  readonly throughput: number;
  readonly p99Us: number;
}

/** Windows that must agree before a step counts as stable. */
export const STABILITY_SPAN = 3;

function within(values: readonly number[], percent: number): boolean {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (mean <= 0) return false;
  return values.every((v) => (Math.abs(v - mean) / mean) * 100 <= percent);
}

export function isStable(windows: readonly WindowFigures[], percent: number, span: number = STABILITY_SPAN): boolean {
  if (windows.length < span) return false;
  const last = windows.slice(-span);
  // A window without a successful request has no latency to compare: never stable.
  if (last.some((w) => w.throughput <= 0)) return false;
  return (
    within(
      last.map((w) => w.throughput),
      percent,
    ) &&
    within(
      last.map((w) => w.p99Us),
      percent,
    )
  );
}
