/**
 * Shadow requests run inside the shadow version's own worker threads. The main thread posts each
 * window of mirrored requests (inputs and the caller's outputs) on a BroadcastChannel named
 * after the version, and reads the results from counters in shared memory when asked: nothing
 * comes back to the event loop the callers are answered on. A worker gathers nothing itself;
 * it claims each window (with several instances, exactly one worker runs it), runs it as one
 * batch of the requests' rows when they can be concatenated, compares each answer with the
 * caller's, and adds the outcome to the counters.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import type { Tensor } from '../core/types.js';
import type { ModelRuntime, RunContext } from '../runtimes/types.js';
import { compareOutputs, emptyComparison, sliceRows, splittable, type CompareMode, type ComparisonCounts } from '../routing/shadow-compare.js';

/** A version whose worker threads take mirrored requests. */
export interface MirrorTarget {
  channel: string;
  /** The version's execution timeout: a mirrored run longer than this has its worker stopped. */
  executionTimeoutMs: number | undefined;
  stopWorker(threadId: number): void;
}

/** The channel a version's workers listen on: the version's artifact path keeps two servers in one process apart. */
export function mirrorChannelName(model: string, version: string, path: string): string {
  return `inferd.mirror:${model}:${version}:${path}`;
}

/**
 * Mirrored requests posted together: their inputs and the callers' outputs concatenated by rows
 * (one typed array per tensor, far cheaper to copy across threads than a tensor per request),
 * or a single request as it came.
 */
export interface MirrorWindow {
  /** Claim number: the worker that swaps `claims[seq & mask]` from seq runs the window. */
  seq: number;
  claims: Int32Array;
  counters: SharedArrayBuffer;
  /** Date.now() when posted: a window older than the timeout when its worker gets to it is not run. */
  sentAt: number;
  timeoutMs: number;
  compare: CompareMode;
  inputs: Tensor[];
  /** Output names asked for; empty: all. */
  outputs: string[];
  /** The callers' answers, concatenated like the inputs. */
  primary: Tensor[];
  /** Rows of each request, in order; a single request with 0 rows is never split. */
  rows: Int32Array;
  /** Each caller's latency, ms. */
  primaryMs: Float64Array;
}

/** Latency samples kept (a ring), here and by the shadows run through the data plane. */
export const MIRROR_LATENCY_SAMPLES = 2048;

const enum Slot {
  Completed,
  Errors,
  Timeouts,
  Labels,
  Agreements,
  Values,
  AbsErrorSum,
  MaxAbsError,
  /** Latency samples recorded so far; the ring's next slot is this modulo its size. */
  LatencyCount,
  LatencyRing,
}

/** Windows running at once, one per worker: [thread id, Date.now() at start, jobs] each. */
const RUN_SLOTS = 64;
const RUNS = Slot.LatencyRing + 2 * MIRROR_LATENCY_SAMPLES;
const FLOAT_SLOTS = RUNS + 3 * RUN_SLOTS;

export interface MirrorOutcome {
  completed: number;
  errors: number;
  timeouts: number;
  comparison: ComparisonCounts;
  /** [caller's ms, shadow's ms] per completed job. */
  latencies: Array<[number, number]>;
}

/** Words before the doubles: the lock, jobs done (wrapping 32-bit count), jobs running. */
const LOCK = 0;
const DONE = 1;
const RUNNING = 2;

/**
 * Totals shared by the main thread and the shadow's workers: three words, then doubles. Workers
 * add under a lock (held for a few additions; a worker waiting for it sleeps). The main thread
 * never waits for a worker, which may be descheduled while holding the lock (a shadow's workers
 * run at a lower priority): it reads the jobs done and running without the lock, and takes the
 * lock only when it is free at once.
 */
export class MirrorCounters {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly values: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(16 + 8 * FLOAT_SLOTS);
    this.words = new Int32Array(this.buffer, 0, 4);
    this.values = new Float64Array(this.buffer, 16, FLOAT_SLOTS);
  }

  /** For the workers: waits for the lock. */
  private locked<T>(body: (v: Float64Array) => T): T {
    while (Atomics.compareExchange(this.words, LOCK, 0, 1) !== 0) Atomics.wait(this.words, LOCK, 1, 1);
    try {
      return body(this.values);
    } finally {
      Atomics.store(this.words, LOCK, 0);
      Atomics.notify(this.words, LOCK, 1);
    }
  }

  /** For the main thread: runs `body` under the lock if it is free now, else returns undefined. */
  private ifFree<T>(body: (v: Float64Array) => T): T | undefined {
    if (Atomics.compareExchange(this.words, LOCK, 0, 1) !== 0) return undefined;
    try {
      return body(this.values);
    } finally {
      Atomics.store(this.words, LOCK, 0);
      Atomics.notify(this.words, LOCK, 1);
    }
  }

  /** A worker starts running a window (one at a time per worker); false when no slot is free. */
  started(thread: number, jobs: number, now: number): boolean {
    return this.locked((v) => {
      for (let i = RUNS; i < RUNS + 3 * RUN_SLOTS; i += 3) {
        if (v[i] !== 0) continue;
        v[i] = thread;
        v[i + 1] = now;
        v[i + 2] = jobs;
        Atomics.add(this.words, RUNNING, jobs);
        return true;
      }
      return false;
    });
  }

  /**
   * The window a worker ran is finished: its outcome is added, unless the window was given up
   * (its worker overran the execution timeout and was stopped) and already counted.
   */
  finished(thread: number, jobs: number, outcome: MirrorOutcome): void {
    this.locked((v) => {
      let slot = -1;
      for (let i = RUNS; i < RUNS + 3 * RUN_SLOTS; i += 3) if (v[i] === thread) slot = i;
      if (slot >= 0) {
        v[slot] = 0;
        v[slot + 1] = 0;
        v[slot + 2] = 0;
        Atomics.sub(this.words, RUNNING, jobs);
        this.add(v, jobs, outcome);
      }
    });
  }

  /** Windows run by no worker (the claim ring overflowed, or too old): counted at once. */
  skipped(jobs: number, outcome: MirrorOutcome): void {
    this.locked((v) => this.add(v, jobs, outcome));
  }

  /**
   * Runs going on longer than `limitMs`: their jobs count as failed now, and the threads running
   * them are returned, to be stopped (as the execution timeout stops a worker's task). None
   * while a worker holds the lock: the caller looks again later.
   */
  overdue(now: number, limitMs: number): number[] {
    const found = this.ifFree((v) => {
      const threads: number[] = [];
      for (let i = RUNS; i < RUNS + 3 * RUN_SLOTS; i += 3) {
        if (v[i] === 0 || now - v[i + 1]! <= limitMs) continue;
        threads.push(v[i]!);
        const jobs = v[i + 2]!;
        Atomics.sub(this.words, RUNNING, jobs);
        Atomics.add(this.words, DONE, jobs);
        v[Slot.Errors] += jobs;
        v[i] = 0;
        v[i + 1] = 0;
        v[i + 2] = 0;
      }
      return threads;
    });
    return found ?? [];
  }

  private add(v: Float64Array, jobs: number, outcome: MirrorOutcome): void {
    Atomics.add(this.words, DONE, jobs);
    v[Slot.Completed] += outcome.completed;
    v[Slot.Errors] += outcome.errors;
    v[Slot.Timeouts] += outcome.timeouts;
    const c = outcome.comparison;
    v[Slot.Labels] += c.labels;
    v[Slot.Agreements] += c.agreements;
    v[Slot.Values] += c.values;
    v[Slot.AbsErrorSum] += c.absErrorSum;
    if (c.maxAbsError > v[Slot.MaxAbsError]!) v[Slot.MaxAbsError] = c.maxAbsError;
    for (const [primaryMs, shadowMs] of outcome.latencies) {
      const at = v[Slot.LatencyCount]! % MIRROR_LATENCY_SAMPLES;
      v[Slot.LatencyRing + at] = primaryMs;
      v[Slot.LatencyRing + MIRROR_LATENCY_SAMPLES + at] = shadowMs;
      v[Slot.LatencyCount] += 1;
    }
  }

  /** Jobs finished (a 32-bit count that wraps: compare differences with `| 0`) and running now; no lock. */
  progress(): { done: number; running: number } {
    return { done: Atomics.load(this.words, DONE), running: Atomics.load(this.words, RUNNING) };
  }

  /**
   * Everything, with the latency samples (unordered). Under the lock when it is free; otherwise
   * read as it stands (a worker may be adding one window's outcome meanwhile).
   */
  snapshot(): MirrorOutcome & { done: number; running: number } {
    const read = (v: Float64Array) => {
      const n = Math.min(v[Slot.LatencyCount]!, MIRROR_LATENCY_SAMPLES);
      const latencies: Array<[number, number]> = [];
      for (let i = 0; i < n; i++) latencies.push([v[Slot.LatencyRing + i]!, v[Slot.LatencyRing + MIRROR_LATENCY_SAMPLES + i]!]);
      return {
        ...this.progress(),
        completed: v[Slot.Completed]!,
        errors: v[Slot.Errors]!,
        timeouts: v[Slot.Timeouts]!,
        comparison: { labels: v[Slot.Labels]!, agreements: v[Slot.Agreements]!, values: v[Slot.Values]!, absErrorSum: v[Slot.AbsErrorSum]!, maxAbsError: v[Slot.MaxAbsError]! },
        latencies,
      };
    };
    return this.ifFree(read) ?? read(this.values);
  }
}

/** The claim ring for a mirror whose windows in flight are at most `bound` (one job each at worst). */
export function claimRing(bound: number): Int32Array {
  let size = 64;
  while (size <= bound) size *= 2;
  return new Int32Array(new SharedArrayBuffer(4 * size));
}

/** Exactly one of the workers listening takes a window. */
function claim(window: MirrorWindow): boolean {
  const mask = window.claims.length - 1;
  return Atomics.compareExchange(window.claims, window.seq & mask, window.seq, -1) === window.seq;
}

/**
 * Listens for mirrored windows for this worker's version, and runs them one at a time, after
 * the model has loaded. Returns the channel, to close with the runtime.
 */
export function serveMirrors(channelName: string, runtime: Promise<ModelRuntime>, context: RunContext): BroadcastChannel {
  const channel = new BroadcastChannel(channelName);
  const waiting: MirrorWindow[] = [];
  let draining = false;
  const drain = async (): Promise<void> => {
    draining = true;
    try {
      for (let window = waiting.shift(); window !== undefined; window = waiting.shift()) await runWindow(window, runtime, context);
    } finally {
      draining = false;
    }
  };
  channel.onmessage = (event: unknown) => {
    const window = (event as { data: MirrorWindow }).data;
    if (!claim(window)) return;
    waiting.push(window);
    if (!draining) void drain();
  };
  // The worker's lifetime is its pool's; the channel must not hold it open.
  channel.unref();
  return channel;
}

async function runWindow(window: MirrorWindow, runtime: Promise<ModelRuntime>, context: RunContext): Promise<void> {
  const outcome: MirrorOutcome = { completed: 0, errors: 0, timeouts: 0, comparison: emptyComparison(), latencies: [] };
  const jobs = window.rows.length;
  const counters = new MirrorCounters(window.counters);
  if (Date.now() - window.sentAt > window.timeoutMs) {
    counters.skipped(jobs, { ...outcome, timeouts: jobs });
    return;
  }
  const tracked = counters.started(threadId, jobs, Date.now());
  try {
    let model: ModelRuntime;
    try {
      model = await runtime;
    } catch {
      outcome.errors = jobs;
      return;
    }
    if (jobs === 1) {
      await runOne(model, window, window.inputs, window.primary, window.primaryMs[0]!, outcome, context);
      return;
    }
    if (await runBatched(model, window, outcome, context)) return;
    // The batch failed or its answer cannot be split: each request alone.
    let total = 0;
    for (const r of window.rows) total += r;
    let from = 0;
    for (let j = 0; j < jobs; j++) {
      const to = from + window.rows[j]!;
      const inputs = window.inputs.map((t) => sliceRows(t, total, from, to));
      const primary = window.primary.map((t) => sliceRows(t, total, from, to));
      await runOne(model, window, inputs, primary, window.primaryMs[j]!, outcome, context);
      from = to;
    }
  } finally {
    if (tracked) counters.finished(threadId, jobs, outcome);
    else counters.skipped(jobs, outcome);
  }
}

/** Runs the window's requests as one; false when that failed or its answer cannot be split by rows. */
async function runBatched(model: ModelRuntime, window: MirrorWindow, outcome: MirrorOutcome, context: RunContext): Promise<boolean> {
  let rows = 0;
  for (const r of window.rows) rows += r;
  const started = performance.now();
  let outputs: Tensor[];
  try {
    outputs = (await model.run(window.inputs, window.outputs, context)).outputs;
  } catch {
    return false;
  }
  const ms = performance.now() - started;
  if (!splittable(outputs, rows)) return false;
  if (ms > window.timeoutMs) {
    outcome.timeouts += window.rows.length;
    return true;
  }
  let from = 0;
  for (let j = 0; j < window.rows.length; j++) {
    const to = from + window.rows[j]!;
    outcome.completed += 1;
    outcome.latencies.push([window.primaryMs[j]!, ms]);
    compareOutputs(
      window.primary.map((t) => sliceRows(t, rows, from, to)),
      outputs.map((o) => sliceRows(o, rows, from, to)),
      window.compare,
      outcome.comparison,
    );
    from = to;
  }
  return true;
}

async function runOne(model: ModelRuntime, window: MirrorWindow, inputs: Tensor[], primary: Tensor[], primaryMs: number, outcome: MirrorOutcome, context: RunContext): Promise<void> {
  const started = performance.now();
  try {
    const { outputs } = await model.run(inputs, window.outputs, context);
    const ms = performance.now() - started;
    if (ms > window.timeoutMs) {
      outcome.timeouts += 1;
      return;
    }
    outcome.completed += 1;
    outcome.latencies.push([primaryMs, ms]);
    compareOutputs(primary, outputs, window.compare, outcome.comparison);
  } catch {
    outcome.errors += 1;
  }
}
