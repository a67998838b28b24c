/**
 * Shadow traffic: a share of a model's requests is also run on a shadow version, off the
 * caller's path. The caller's answer never waits for it and never sees its errors: mirrored
 * requests go through a bounded queue that drops when full, run with bounded concurrency and a
 * timeout, and everything they throw is counted, not propagated. Answers are compared with the
 * caller's: agreement rate for labels (integer or text outputs, or each row's top class with
 * `compare: argmax`), absolute error for values, and both latencies side by side.
 *
 * Mirrored requests are gathered for `batchWindowMs` and run as one request whose rows are
 * theirs concatenated (same inputs, same trailing dimensions): one call through the data plane
 * and one worker message per window instead of one per request, which is what keeps the
 * callers' tail latency where it was without a shadow. The answer is split back by rows and
 * each part compared with its caller's. A batched call that fails is retried in batches half
 * as large, down to one request at a time.
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
  /** Rows (first dimension) of the request, and what requests it may be batched with; undefined: alone. */
  rows?: number;
  signature?: string;
}

/** The rows and batching signature of a request, when its inputs can be concatenated with others'. */
function batchShape(request: InferenceRequest): { rows: number; signature: string } | undefined {
  if (request.inputs.length === 0 || (request.outputs !== undefined && request.outputs.length > 0)) return undefined;
  if (request.parameters !== undefined && Object.keys(request.parameters).length > 0) return undefined;
  let rows: number | undefined;
  const parts: string[] = [];
  for (const t of request.inputs) {
    if (t.shape.length < 1 || (t.parameters !== undefined && Object.keys(t.parameters).length > 0)) return undefined;
    if (rows !== undefined && t.shape[0] !== rows) return undefined;
    rows = t.shape[0]!;
    parts.push(`${t.name}:${t.datatype}:${t.shape.slice(1).join('x')}`);
  }
  return rows === undefined || rows < 1 ? undefined : { rows, signature: parts.join('|') };
}

/**
 * A copy of a request the caller's path can no longer touch: tensor data copied (typed arrays by
 * slice, byte strings each), the rest cloned only when present. On the caller's path, so a few
 * times cheaper than structuredClone of the whole request.
 */
function copyRequest(request: InferenceRequest): InferenceRequest {
  const copy: InferenceRequest = {
    ...request,
    inputs: request.inputs.map((t) => {
      const data = Array.isArray(t.data) ? t.data.map((b) => b.slice()) : (t.data as unknown as Concatenable).slice(0, t.data.length);
      return { ...t, shape: t.shape.slice(), data: data as TensorData, ...(t.parameters !== undefined ? { parameters: structuredClone(t.parameters) } : {}) };
    }),
  };
  if (request.outputs !== undefined) copy.outputs = structuredClone(request.outputs);
  if (request.parameters !== undefined) copy.parameters = structuredClone(request.parameters);
  return copy;
}

type Concatenable = { length: number; constructor: unknown; subarray?: (a: number, b: number) => unknown; slice: (a: number, b: number) => unknown };

/** The data of several tensors one after another (typed arrays of one kind, or arrays of byte strings). */
function concatData(parts: readonly TensorData[]): TensorData | undefined {
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as readonly Uint8Array[][]).flat();
  const Typed = (first as Concatenable).constructor as new (n: number) => { set(a: ArrayLike<unknown>, at: number): void };
  let total = 0;
  for (const p of parts) {
    if ((p as Concatenable).constructor !== Typed) return undefined;
    total += p.length;
  }
  const out = new Typed(total);
  let at = 0;
  for (const p of parts) {
    out.set(p as ArrayLike<unknown>, at);
    at += p.length;
  }
  return out as unknown as TensorData;
}

/** Rows from..to of a tensor whose first dimension is rows (a view, not a copy, for typed arrays). */
function sliceRows(tensor: Tensor, rows: number, from: number, to: number): Tensor {
  const width = tensor.data.length / rows;
  const data = tensor.data as unknown as Concatenable;
  const part = (data.subarray ?? data.slice).call(data, from * width, to * width) as TensorData;
  return { ...tensor, shape: [to - from, ...tensor.shape.slice(1)], data: part };
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
  private windowTimer: NodeJS.Timeout | undefined;
  /**
   * Most requests in one batch now: halved each time a batched call fails (a version that takes
   * smaller batches than max_batch settles at a size it takes); below 2, no batching at all.
   */
  private batchLimit: number;
  private batching = true;
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
  ) {
    this.batchLimit = policy.maxBatch;
  }

  /** Decides whether this request is mirrored; when it is, keeps a copy (the caller's tensors may be handed to a worker). */
  pick(request: InferenceRequest): InferenceRequest | undefined {
    if (this.closed || this.policy.percent <= 0 || this.random() * 100 >= this.policy.percent) return undefined;
    this.counts.mirrored += 1;
    if (this.queue.length + this.running >= this.policy.queueSize + this.policy.concurrency) {
      this.counts.dropped += 1;
      return undefined;
    }
    try {
      return copyRequest(request);
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
    const shape = this.batching && this.policy.batchWindowMs > 0 ? batchShape(copy) : undefined;
    this.queue.push({ ctx, request: copy, primary, primaryMs, ...(shape !== undefined ? shape : {}) });
    if (shape !== undefined) {
      // Gathered for a window, then run together (sooner when a full batch is waiting).
      if (this.queue.length >= this.batchLimit && this.running < this.policy.concurrency) {
        clearTimeout(this.windowTimer);
        this.windowTimer = undefined;
      } else {
        if (this.windowTimer === undefined) {
          this.windowTimer = setTimeout(() => {
            this.windowTimer = undefined;
            this.pump();
          }, this.policy.batchWindowMs);
          this.windowTimer.unref?.();
        }
        return;
      }
    }
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
      const first = this.queue.shift()!;
      const batch = [first];
      if (first.signature !== undefined && this.batching) {
        // The jobs that can join it, in arrival order, up to max_batch.
        for (let i = 0; i < this.queue.length && batch.length < this.batchLimit; ) {
          if (this.queue[i]!.signature === first.signature) batch.push(...this.queue.splice(i, 1));
          else i += 1;
        }
      }
      this.running += 1;
      void (batch.length === 1 ? this.execute(first) : this.executeBatch(batch)).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  /** Runs jobs as one request of their rows concatenated; splits and compares the answer. */
  private async executeBatch(jobs: Job[]): Promise<void> {
    const head = jobs[0]!.request;
    const inputs: Tensor[] = [];
    let rows = 0;
    for (const job of jobs) rows += job.rows!;
    for (let k = 0; k < head.inputs.length; k++) {
      const data = concatData(jobs.map((j) => j.request.inputs[k]!.data));
      if (data === undefined) return this.unbatched(jobs);
      const t = head.inputs[k]!;
      inputs.push({ name: t.name, datatype: t.datatype, shape: [rows, ...t.shape.slice(1)], data });
    }
    const merged: Job = { ctx: jobs[0]!.ctx, request: { inputs }, primary: jobs[0]!.primary, primaryMs: jobs[0]!.primaryMs };
    const outcome = await this.call(merged, `${jobs.length}`);
    if (outcome === 'timeout') {
      this.counts.timeouts += jobs.length;
      return;
    }
    if (outcome instanceof Error) return this.unbatched(jobs);
    const { response, ms } = outcome;
    // Every output must have one row per input row, or the answer cannot be split.
    if (!response.outputs.every((o) => o.shape.length >= 1 && o.shape[0] === rows && o.data.length % rows === 0)) return this.unbatched(jobs);
    let from = 0;
    for (const job of jobs) {
      const to = from + job.rows!;
      this.counts.completed += 1;
      this.latency(job.primaryMs, ms);
      this.compare(job.primary, { ...response, outputs: response.outputs.map((o) => sliceRows(o, rows, from, to)) });
      from = to;
    }
  }

  /** A batched call failed: its jobs run again in batches half as large, or alone. */
  private unbatched(jobs: Job[]): void {
    this.batchLimit = Math.min(this.batchLimit, Math.floor(jobs.length / 2));
    if (this.batchLimit < 2) {
      this.batching = false;
      for (const job of this.queue.concat(jobs)) {
        delete job.signature;
        delete job.rows;
      }
    }
    this.queue.unshift(...jobs);
  }

  /** One call on the shadow version with the timeout; never throws. */
  private async call(job: Job, tag: string): Promise<{ response: InferenceResponse; ms: number } | 'timeout' | Error> {
    const controller = new AbortController();
    const timeoutMs = this.policy.timeoutMs;
    const shadowCtx: RequestContext = {
      requestId: `${job.ctx.requestId}.shadow${tag === '1' ? '' : `+${tag}`}`,
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
        controller.abort();
        return 'timeout';
      }
      return { response: result, ms: this.now() - started };
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    } finally {
      clearTimeout(timer);
    }
  }

  private async execute(job: Job): Promise<void> {
    const outcome = await this.call(job, '1');
    if (outcome === 'timeout') this.counts.timeouts += 1;
    else if (outcome instanceof Error) this.counts.errors += 1;
    else {
      this.counts.completed += 1;
      this.latency(job.primaryMs, outcome.ms);
      this.compare(job.primary, outcome.response);
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
    clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    this.counts.dropped += this.queue.length;
    this.queue.length = 0;
  }
}
