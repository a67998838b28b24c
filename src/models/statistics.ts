/** Per-version counters in the shape of Triton's statistics extension (counts and nanoseconds). */
import type { ModelStatistics, StatDuration } from '../core/types.js';
import type { RunTimings } from '../runtimes/types.js';

const zero = (): StatDuration => ({ count: 0, ns: 0 });

interface BatchStat {
  compute_input: StatDuration;
  compute_infer: StatDuration;
  compute_output: StatDuration;
}

export class VersionStatistics {
  private lastInference = 0;
  private inferenceCount = 0;
  private executionCount = 0;
  private readonly success = zero();
  private readonly fail = zero();
  private readonly queue = zero();
  private readonly computeInput = zero();
  private readonly computeInfer = zero();
  private readonly computeOutput = zero();
  private readonly cacheHit = zero();
  private readonly cacheMiss = zero();
  private readonly batches = new Map<number, BatchStat>();

  constructor(
    readonly name: string,
    readonly version: string,
  ) {}

  /** One execution of a (possibly merged) batch. */
  recordExecution(batchRows: number, timings: RunTimings): void {
    this.executionCount++;
    let b = this.batches.get(batchRows);
    if (!b) {
      b = { compute_input: zero(), compute_infer: zero(), compute_output: zero() };
      this.batches.set(batchRows, b);
    }
    add(b.compute_input, timings.inputNs);
    add(b.compute_infer, timings.inferNs);
    add(b.compute_output, timings.outputNs);
  }

  /** One request answered; compute times are the batch's, as Triton counts them per request. */
  recordSuccess(rows: number, totalNs: number, queueNs: number, timings: RunTimings): void {
    this.lastInference = Date.now();
    this.inferenceCount += rows;
    add(this.success, totalNs);
    add(this.queue, queueNs);
    add(this.computeInput, timings.inputNs);
    add(this.computeInfer, timings.inferNs);
    add(this.computeOutput, timings.outputNs);
  }

  /**
   * A request answered from the prediction cache (Triton counts it as a success, with the
   * lookup time, and not as an execution).
   */
  recordCacheHit(rows: number, lookupNs: number): void {
    this.lastInference = Date.now();
    this.inferenceCount += rows;
    add(this.success, lookupNs);
    add(this.cacheHit, lookupNs);
  }

  /** A request the cache could not answer: the time spent looking it up and storing the answer. */
  recordCacheMiss(ns: number): void {
    add(this.cacheMiss, ns);
  }

  recordFailure(totalNs: number): void {
    add(this.fail, totalNs);
  }

  snapshot(): ModelStatistics {
    return {
      name: this.name,
      version: this.version,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: { ...this.success },
        fail: { ...this.fail },
        queue: { ...this.queue },
        compute_input: { ...this.computeInput },
        compute_infer: { ...this.computeInfer },
        compute_output: { ...this.computeOutput },
        cache_hit: { ...this.cacheHit },
        cache_miss: { ...this.cacheMiss },
      },
      batch_stats: [...this.batches.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([batch_size, s]) => ({
          batch_size,
          compute_input: { ...s.compute_input },
          compute_infer: { ...s.compute_infer },
          compute_output: { ...s.compute_output },
        })),
    };
  }
}

function add(d: StatDuration, ns: number): void {
  d.count++;
  d.ns += Math.round(ns);
}
