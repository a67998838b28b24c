/**
 * Shadow traffic: a share of a model's requests is also run on a shadow version, off the
 * caller's path. The caller's answer never waits for it and never sees its errors: mirrored
 * requests go through a bounded queue that drops when full, run with bounded concurrency and a
 * timeout, and everything they throw is counted, not propagated. Answers are compared with the
 * caller's: agreement rate for labels (integer or text outputs, or each row's top class with
 * `compare: argmax`), absolute error for values, and both latencies side by side.
 *
 * Mirrored requests are gathered for `batchWindowMs` and run as one request whose rows are
 * theirs concatenated (same inputs, same trailing dimensions). When the shadow version runs in
 * this process's worker threads, the window is posted to them once (workers/mirror.ts): they
 * run, split and compare it and keep the totals in shared memory, so the event loop the callers
 * are answered on spends one post per window on the shadow and receives nothing back. Otherwise
 * the window is one call through the data plane, whose answer is split back by rows and each
 * part compared with its caller's; a batched call that fails is retried in batches half as
 * large, down to one request at a time.
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { TensorData } from '../core/datatypes.js';
import type { InferenceRequest, InferenceResponse, RequestContext, Tensor } from '../core/types.js';
import type { ShadowPolicy } from './config.js';
import { claimRing, MIRROR_LATENCY_SAMPLES as LATENCY_SAMPLES, MirrorCounters, type MirrorTarget, type MirrorWindow } from '../workers/mirror.js';
import { percentile } from './observations.js';
import { compareOutputs, concatData, emptyComparison, sliceRows, splittable } from './shadow-compare.js';

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
      const data = Array.isArray(t.data) ? t.data.map((b) => b.slice()) : (t.data as unknown as { slice(a: number, b: number): unknown }).slice(0, t.data.length);
      return { ...t, shape: t.shape.slice(), data: data as TensorData, ...(t.parameters !== undefined ? { parameters: structuredClone(t.parameters) } : {}) };
    }),
  };
  if (request.outputs !== undefined) copy.outputs = structuredClone(request.outputs);
  if (request.parameters !== undefined) copy.parameters = structuredClone(request.parameters);
  return copy;
}


type WindowBody = Pick<MirrorWindow, 'inputs' | 'outputs' | 'primary' | 'rows' | 'primaryMs'>;

/** One request as it came, for the shadow's workers. */
function alone(job: Job): WindowBody {
  return {
    inputs: job.request.inputs,
    outputs: job.request.outputs?.map((o) => o.name) ?? [],
    primary: job.primary.outputs,
    rows: Int32Array.of(job.rows ?? 0),
    primaryMs: Float64Array.of(job.primaryMs),
  };
}

/**
 * Requests of one batching signature as one: inputs and the callers' outputs concatenated by
 * rows. Undefined when the callers' answers differ in outputs or have no row per input row.
 */
function packRows(jobs: Job[]): WindowBody | undefined {
  const head = jobs[0]!;
  let rows = 0;
  for (const job of jobs) rows += job.rows!;
  const outputs = head.primary.outputs;
  for (const job of jobs) {
    const own = job.primary.outputs;
    if (own.length !== outputs.length) return undefined;
    for (let k = 0; k < own.length; k++) {
      const o = own[k]!;
      if (o.name !== outputs[k]!.name || o.datatype !== outputs[k]!.datatype || o.shape.length < 1 || o.shape[0] !== job.rows) return undefined;
    }
  }
  const concatenated = (tensors: readonly Tensor[], pick: (job: Job) => readonly Tensor[]): Tensor[] | undefined => {
    const out: Tensor[] = [];
    for (let k = 0; k < tensors.length; k++) {
      const data = concatData(jobs.map((j) => pick(j)[k]!.data));
      if (data === undefined) return undefined;
      const t = tensors[k]!;
      out.push({ name: t.name, datatype: t.datatype, shape: [rows, ...t.shape.slice(1)], data });
    }
    return out;
  };
  const inputs = concatenated(head.request.inputs, (j) => j.request.inputs);
  const primary = concatenated(outputs, (j) => j.primary.outputs);
  if (inputs === undefined || primary === undefined) return undefined;
  return { inputs, outputs: [], primary, rows: Int32Array.from(jobs, (j) => j.rows!), primaryMs: Float64Array.from(jobs, (j) => j.primaryMs) };
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
  private counts = { mirrored: 0, dropped: 0, completed: 0, errors: 0, timeouts: 0 };
  private comparison = emptyComparison();
  private primaryLatency: number[] = [];
  private shadowLatency: number[] = [];
  private latencyNext = 0;
  /** The shadow version's worker threads, once windows have been posted to them. */
  private link: WorkerLink | undefined;

  /**
   * `channelOf` names the channel the shadow version's worker threads listen on when it runs in
   * this process's workers (then windows go to them directly); undefined: through `run`.
   */
  constructor(
    readonly model: string,
    readonly policy: ShadowPolicy,
    private readonly run: RunOnVersion,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = () => performance.now(),
    private readonly targetOf?: (model: string, version: string) => MirrorTarget | undefined,
  ) {
    this.batchLimit = policy.maxBatch;
  }

  /** Jobs queued here, running here, or handed to the workers and not finished. */
  private get held(): number {
    return this.queue.length + this.running + (this.link?.outstanding(this.now()) ?? 0);
  }

  /** Decides whether this request is mirrored; when it is, keeps a copy (the caller's tensors may be handed to a worker). */
  pick(request: InferenceRequest): InferenceRequest | undefined {
    if (this.closed || this.policy.percent <= 0 || this.random() * 100 >= this.policy.percent) return undefined;
    this.counts.mirrored += 1;
    if (this.held >= this.policy.queueSize + this.policy.concurrency) {
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
    if (this.held >= this.policy.queueSize + this.policy.concurrency) {
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
    const target = this.queue.length > 0 ? this.targetOf?.(this.model, this.policy.version) : undefined;
    if (target !== undefined) return this.post(target);
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
    if (!splittable(response.outputs, rows)) return this.unbatched(jobs);
    let from = 0;
    for (const job of jobs) {
      const to = from + job.rows!;
      this.counts.completed += 1;
      this.latency(job.primaryMs, ms);
      compareOutputs(job.primary.outputs, response.outputs.map((o) => sliceRows(o, rows, from, to)), this.policy.compare, this.comparison);
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
      compareOutputs(job.primary.outputs, outcome.response.outputs, this.policy.compare, this.comparison);
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

  stats(): ShadowStats {
    const c = this.counts;
    const totals = { ...this.comparison };
    let completed = c.completed;
    let errors = c.errors;
    let timeouts = c.timeouts;
    let primary = this.primaryLatency;
    let shadow = this.shadowLatency;
    let inWorkers = { queued: 0, running: 0 };
    if (this.link !== undefined) {
      // First: it gives up on what will never finish, which the totals below then include.
      const outstanding = this.link.outstanding(this.now());
      const w = this.link.counters.snapshot();
      completed += w.completed;
      errors += w.errors;
      timeouts += w.timeouts + this.link.abandoned;
      totals.labels += w.comparison.labels;
      totals.agreements += w.comparison.agreements;
      totals.values += w.comparison.values;
      totals.absErrorSum += w.comparison.absErrorSum;
      totals.maxAbsError = Math.max(totals.maxAbsError, w.comparison.maxAbsError);
      primary = primary.concat(w.latencies.map((l) => l[0]));
      shadow = shadow.concat(w.latencies.map((l) => l[1]));
      inWorkers = { running: Math.min(outstanding, w.running), queued: Math.max(0, outstanding - w.running) };
    }
    const p = Float64Array.from(primary).sort();
    const s = Float64Array.from(shadow).sort();
    const q = (values: Float64Array, at: number) => (values.length === 0 ? null : percentile(values, at));
    return {
      model: this.model,
      version: this.policy.version,
      percent: this.policy.percent,
      mirrored: c.mirrored,
      dropped: c.dropped,
      queued: this.queue.length + inWorkers.queued,
      running: this.running + inWorkers.running,
      completed,
      errors,
      timeouts,
      labelComparisons: totals.labels,
      agreementRate: totals.labels === 0 ? null : totals.agreements / totals.labels,
      valueComparisons: totals.values,
      meanAbsoluteError: totals.values === 0 ? null : totals.absErrorSum / totals.values,
      maxAbsoluteError: totals.values === 0 ? null : totals.maxAbsError,
      latencyMs: { primary: { p50: q(p, 50), p99: q(p, 99) }, shadow: { p50: q(s, 50), p99: q(s, 99) } },
    };
  }

  /**
   * Hands every queued job to the shadow version's worker threads: one message per group of
   * jobs that can run as one batch (up to max_batch), one per job otherwise. Nothing comes back
   * to this thread; the workers add their results to the shared counters.
   */
  private post(target: MirrorTarget): void {
    if (this.link === undefined || this.link.name !== target.channel) {
      this.link?.close();
      this.link = new WorkerLink(target.channel, this.policy.queueSize + this.policy.concurrency, this.now, this.link);
    }
    this.link.target = target;
    const link = this.link;
    while (this.queue.length > 0) {
      const first = this.queue.shift()!;
      const batch = [first];
      if (first.signature !== undefined) {
        for (let i = 0; i < this.queue.length && batch.length < this.policy.maxBatch; ) {
          if (this.queue[i]!.signature === first.signature) batch.push(this.queue.splice(i, 1)[0]!);
          else i += 1;
        }
      }
      const packed = batch.length > 1 ? packRows(batch) : undefined;
      const windows = packed !== undefined ? [packed] : batch.map(alone);
      for (const window of windows) if (!link.send(window, this.policy, this.now())) this.counts.errors += window.rows.length;
    }
  }

  /** Stops taking work; queued jobs are dropped, running ones finish on their own. */
  close(): void {
    this.closed = true;
    clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    this.counts.dropped += this.queue.length;
    this.queue.length = 0;
    this.link?.close();
  }
}

/**
 * The channel to a shadow version's worker threads and the counters they fill. A window whose
 * run overruns the version's execution timeout fails and its worker is stopped, as a task's
 * would be; a watchdog looks every quarter of that timeout while windows are out. Windows no
 * worker finishes would hold their place in the bound for ever: those no worker claimed within
 * twice the timeout (none listening: the version unloaded, its workers being replaced), and,
 * once the workers have made no progress for a while, every job still out, are counted as
 * timed out and their places freed.
 */
class WorkerLink {
  readonly counters: MirrorCounters;
  private readonly claims: Int32Array;
  private readonly channel: BroadcastChannel;
  private seq = 0;
  /** Jobs posted, and those given up for lost. */
  private posted = 0;
  abandoned = 0;
  private lastDone = 0;
  private lastProgressAt = 0;
  private timeoutMs = 0;
  target: MirrorTarget | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Windows posted, oldest first, until they are old enough to tell whether a worker claimed them. */
  private readonly sent: Array<{ seq: number; jobs: number; at: number }> = [];

  /** `previous`: the link this one replaces (the version's workers moved); its totals carry over. */
  constructor(
    readonly name: string,
    bound: number,
    private readonly now: () => number,
    previous?: WorkerLink,
  ) {
    this.counters = previous?.counters ?? new MirrorCounters();
    this.claims = claimRing(bound);
    if (previous !== undefined) {
      this.posted = previous.posted;
      this.abandoned = previous.abandoned;
      this.lastDone = previous.lastDone;
    }
    this.channel = new BroadcastChannel(name);
    this.channel.unref();
  }

  /** Stops the workers of runs past the execution timeout (their jobs count as failed). */
  private checkOverdue(): void {
    const limit = this.target?.executionTimeoutMs;
    if (limit === undefined) return;
    for (const thread of this.counters.overdue(Date.now(), limit)) this.target?.stopWorker(thread);
  }

  /**
   * Windows no worker claimed within twice the timeout never will be (none was listening): their
   * jobs count as timed out at once, and the claim is withdrawn so a late listener skips them.
   */
  private dropUnclaimed(now: number): void {
    const mask = this.claims.length - 1;
    while (this.sent.length > 0 && now - this.sent[0]!.at > 2 * this.timeoutMs) {
      const window = this.sent.shift()!;
      if (Atomics.compareExchange(this.claims, window.seq & mask, window.seq, 0) === window.seq) this.abandoned += window.jobs;
    }
  }

  /** Jobs posted and neither finished nor given up (see the class comment). */
  outstanding(now: number): number {
    this.dropUnclaimed(now);
    const { done, running } = this.counters.progress();
    if (done !== this.lastDone) {
      this.lastDone = done;
      this.lastProgressAt = now;
    }
    // `done` is a wrapping 32-bit count: the difference, taken to 32 bits, is exact below 2^31 jobs out.
    let out = (this.posted - this.abandoned - done) | 0;
    if (out < 0) {
      // Finished after being given up: already counted as timed out.
      this.abandoned += out;
      out = 0;
    }
    // A worker running a job may be slow, not gone: it gets ten times the timeout.
    const patience = running > 0 ? 10 * this.timeoutMs : 2 * this.timeoutMs;
    if (out > 0 && now - this.lastProgressAt > patience) {
      this.abandoned += out;
      out = 0;
    }
    return out;
  }

  /** Posts one window; false when it cannot be sent (its data cannot be copied). */
  send(body: WindowBody, policy: ShadowPolicy, now: number): boolean {
    if (this.outstanding(now) === 0) this.lastProgressAt = now;
    this.timeoutMs = policy.timeoutMs;
    this.seq = (this.seq % 0x3fffffff) + 1;
    Atomics.store(this.claims, this.seq & (this.claims.length - 1), this.seq);
    const window: MirrorWindow = { seq: this.seq, claims: this.claims, counters: this.counters.buffer, sentAt: Date.now(), timeoutMs: policy.timeoutMs, compare: policy.compare, ...body };
    try {
      this.channel.postMessage(window);
    } catch {
      return false;
    }
    this.posted += body.rows.length;
    this.sent.push({ seq: this.seq, jobs: body.rows.length, at: now });
    const limit = this.target?.executionTimeoutMs;
    if (limit !== undefined && this.watchdog === undefined) {
      this.watchdog = setInterval(() => {
        this.checkOverdue();
        if (this.outstanding(this.now()) === 0) {
          clearInterval(this.watchdog);
          this.watchdog = undefined;
        }
      }, Math.max(10, Math.min(1000, limit / 4)));
      this.watchdog.unref();
    }
    return true;
  }

  close(): void {
    this.channel.close();
    // Windows already posted still run; the watchdog stops itself once none is out.
  }
}
