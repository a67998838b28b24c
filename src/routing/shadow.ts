/**
 * Shadow traffic: a share of a model's requests is also run on a shadow version, off the
 * caller's path. The caller's answer never waits for it and never sees its errors: mirrored
 * requests go through a bounded queue that drops when full, run with bounded concurrency and a
 * timeout, and everything they throw is counted, not propagated. Answers are compared with the
 * caller's: agreement rate for labels (integer or text outputs, or each row's top class with
 * `compare: argmax`), absolute error for values, and both latencies side by side.
 */
import type { TensorData } from '../core/datatypes.js';
import type { InferenceRequest, InferenceResponse, RequestContext, Tensor } from '../core/types.js';
import type { ShadowPolicy } from './config.js';
import { percentile } from './observations.js';

/** Runs a request on the version `ctx.version` names (the data plane, through one adapter). */
export type RunOnVersion = (ctx: RequestContext, request: InferenceRequest) => Promise<InferenceResponse>;

export interface ShadowStats {
  model: string;
  version: string;
  percent: number;
  /** Requests picked for mirroring. */
  mirrored: number;
  /** Picked but dropped because the queue was full. */
  dropped: number;
  queued: number;
  running: number;
  completed: number;
  errors: number;
  timeouts: number;
  /** Outputs compared as labels / values. */
  labelComparisons: number;
  agreementRate: number | null;
  valueComparisons: number;
  meanAbsoluteError: number | null;
  maxAbsoluteError: number | null;
  latencyMs: { primary: { p50: number | null; p99: number | null }; shadow: { p50: number | null; p99: number | null } };
}

interface Job {
  ctx: RequestContext;
  request: InferenceRequest;
  primary: InferenceResponse;
  primaryMs: number;
}

const LATENCY_SAMPLES = 2048;

function isLabelType(datatype: string): boolean {
  return datatype === 'BYTES' || datatype === 'BOOL' || datatype.startsWith('INT') || datatype.startsWith('UINT');
}

function element(data: TensorData, i: number): number | string {
  const value = (data as ArrayLike<unknown>)[i];
  if (value instanceof Uint8Array) return Buffer.from(value).toString('latin1');
  return typeof value === 'bigint' ? Number(value) : (value as number);
}

function argmaxRows(tensor: Tensor): number[] {
  const width = tensor.shape.length === 0 ? 1 : tensor.shape[tensor.shape.length - 1]!;
  const data = tensor.data as ArrayLike<number | bigint>;
  const rows: number[] = [];
  for (let start = 0; start + width <= data.length && width > 0; start += width) {
    let best = 0;
    for (let j = 1; j < width; j++) if (Number(data[start + j]) > Number(data[start + best])) best = j;
    rows.push(best);
  }
  return rows;
}

export class ShadowMirror {
  private readonly queue: Job[] = [];
  private running = 0;
  private closed = false;
  private pumpScheduled = false;
  private counts = { mirrored: 0, dropped: 0, completed: 0, errors: 0, timeouts: 0, labels: 0, agreements: 0, values: 0, absErrorSum: 0, maxAbsError: 0 };
  private primaryLatency: number[] = [];
  private shadowLatency: number[] = [];
  private latencyNext = 0;

  constructor(
    readonly model: string,
    readonly policy: ShadowPolicy,
    private readonly run: RunOnVersion,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Decides whether this request is mirrored; when it is, keeps a copy (the caller's tensors may be handed to a worker). */
  pick(request: InferenceRequest): InferenceRequest | undefined {
    if (this.closed || this.policy.percent <= 0 || this.random() * 100 >= this.policy.percent) return undefined;
    this.counts.mirrored += 1;
    if (this.queue.length + this.running >= this.policy.queueSize + this.policy.concurrency) {
      this.counts.dropped += 1;
      return undefined;
    }
    try {
      return structuredClone(request);
    } catch {
      this.counts.errors += 1;
      return undefined;
    }
  }

  /** Queues the mirrored request with the caller's answer; returns at once and never throws. */
  submit(ctx: RequestContext, copy: InferenceRequest, primary: InferenceResponse, primaryMs: number): void {
    if (this.closed) return;
    if (this.queue.length + this.running >= this.policy.queueSize + this.policy.concurrency) {
      this.counts.dropped += 1;
      return;
    }
    this.queue.push({ ctx, request: copy, primary, primaryMs });
    // Started on the next turn of the event loop, so the caller's answer is written first.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  private pump(): void {
    while (this.running < this.policy.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running += 1;
      void this.execute(job).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  private async execute(job: Job): Promise<void> {
    const controller = new AbortController();
    const timeoutMs = this.policy.timeoutMs;
    const shadowCtx: RequestContext = {
      requestId: `${job.ctx.requestId}.shadow`,
      protocol: 'internal',
      door: 'internal',
      model: this.model,
      version: this.policy.version,
      deadline: Date.now() + timeoutMs,
      signal: controller.signal,
      variant: 'shadow',
      responseHeaders: {},
    };
    if (job.ctx.identity !== undefined) shadowCtx.identity = job.ctx.identity;
    const started = this.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref?.();
    });
    try {
      const result = await Promise.race([Promise.resolve().then(() => this.run(shadowCtx, job.request)), timedOut]);
      if (result === 'timeout') {
        this.counts.timeouts += 1;
        controller.abort();
        return;
      }
      this.counts.completed += 1;
      this.latency(job.primaryMs, this.now() - started);
      this.compare(job.primary, result);
    } catch {
      this.counts.errors += 1;
    } finally {
      clearTimeout(timer);
    }
  }

  private latency(primaryMs: number, shadowMs: number): void {
    if (this.primaryLatency.length < LATENCY_SAMPLES) {
      this.primaryLatency.push(primaryMs);
      this.shadowLatency.push(shadowMs);
    } else {
      this.primaryLatency[this.latencyNext] = primaryMs;
      this.shadowLatency[this.latencyNext] = shadowMs;
      this.latencyNext = (this.latencyNext + 1) % LATENCY_SAMPLES;
    }
  }

  private compare(primary: InferenceResponse, shadow: InferenceResponse): void {
    for (const p of primary.outputs) {
      const s = shadow.outputs.find((o) => o.name === p.name);
      if (s === undefined) continue;
      if (this.policy.compare === 'argmax' && !isLabelType(p.datatype) && !isLabelType(s.datatype)) {
        const a = argmaxRows(p);
        const b = argmaxRows(s);
        for (let i = 0; i < Math.min(a.length, b.length); i++) {
          this.counts.labels += 1;
          if (a[i] === b[i]) this.counts.agreements += 1;
        }
        continue;
      }
      const n = Math.min(p.data.length, s.data.length);
      if (isLabelType(p.datatype)) {
        for (let i = 0; i < n; i++) {
          this.counts.labels += 1;
          if (element(p.data, i) === element(s.data, i)) this.counts.agreements += 1;
        }
      } else {
        for (let i = 0; i < n; i++) {
          const error = Math.abs(Number(element(p.data, i)) - Number(element(s.data, i)));
          if (!Number.isFinite(error)) continue;
          this.counts.values += 1;
          this.counts.absErrorSum += error;
          if (error > this.counts.maxAbsError) this.counts.maxAbsError = error;
        }
      }
    }
  }

  stats(): ShadowStats {
    const c = this.counts;
    const p = Float64Array.from(this.primaryLatency).sort();
    const s = Float64Array.from(this.shadowLatency).sort();
    const q = (values: Float64Array, at: number) => (values.length === 0 ? null : percentile(values, at));
    return {
      model: this.model,
      version: this.policy.version,
      percent: this.policy.percent,
      mirrored: c.mirrored,
      dropped: c.dropped,
      queued: this.queue.length,
      running: this.running,
      completed: c.completed,
      errors: c.errors,
      timeouts: c.timeouts,
      labelComparisons: c.labels,
      agreementRate: c.labels === 0 ? null : c.agreements / c.labels,
      valueComparisons: c.values,
      meanAbsoluteError: c.values === 0 ? null : c.absErrorSum / c.values,
      maxAbsoluteError: c.values === 0 ? null : c.maxAbsError,
      latencyMs: { primary: { p50: q(p, 50), p99: q(p, 99) }, shadow: { p50: q(s, 50), p99: q(s, 99) } },
    };
  }

  /** Stops taking work; queued jobs are dropped, running ones finish on their own. */
  close(): void {
    this.closed = true;
    this.counts.dropped += this.queue.length;
    this.queue.length = 0;
  }
}
