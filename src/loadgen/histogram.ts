/**
 * Latency recording with fixed memory: an HDR histogram in microseconds.
 *
 * One histogram per measurement window; windows are merged for the step summary. Recording is
 * a bucket increment, so the cost per request does not grow with the request count.
 */
import { build, type Histogram } from 'hdr-histogram-js';

/** Largest latency that is recorded exactly enough: one hour. Larger values are clamped. */
const HIGHEST_US = 3_600_000_000;

export interface LatencySummary {
  readonly count: number;
  readonly minUs: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p95Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

export class LatencyHistogram {
  private readonly h: Histogram;

  constructor() {
    // Three significant digits: 0.1% resolution at any magnitude, about 100 KiB of counters.
    this.h = build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: HIGHEST_US,
      numberOfSignificantValueDigits: 3,
      useWebAssembly: false,
    });
  }

  /** Records one latency in microseconds. */
  record(us: number): void {
    const v = us < 1 ? 1 : us > HIGHEST_US ? HIGHEST_US : Math.round(us);
    this.h.recordValue(v);
  }

  get count(): number {
    return this.h.totalCount;
  }

  add(other: LatencyHistogram): void {
    this.h.add(other.h);
  }

  reset(): void {
    this.h.reset();
  }

  percentile(p: number): number {
    return this.h.totalCount === 0 ? 0 : this.h.getValueAtPercentile(p);
  }

  summary(): LatencySummary {
    const h = this.h;
    if (h.totalCount === 0) {
      return { count: 0, minUs: 0, meanUs: 0, p50Us: 0, p90Us: 0, p95Us: 0, p99Us: 0, maxUs: 0 };
    }
    return {
      count: h.totalCount,
      minUs: h.minNonZeroValue,
      meanUs: Math.round(h.mean),
      p50Us: h.getValueAtPercentile(50),
      p90Us: h.getValueAtPercentile(90),
      p95Us: h.getValueAtPercentile(95),
      p99Us: h.getValueAtPercentile(99),
      maxUs: h.maxValue,
    };
  }

  static merge(parts: readonly LatencyHistogram[]): LatencyHistogram {
    const out = new LatencyHistogram();
    for (const p of parts) out.add(p);
    return out;
  }
}
