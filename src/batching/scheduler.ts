/**
 * The per-model-version scheduler: Triton's dynamic batcher semantics on top of a worker pool.
 *
 * Requests wait in one FIFO per priority level. A batch is formed from the head of the highest
 * non-empty level when an instance is free, and goes out when it is full, when it reaches a
 * preferred size, or when its oldest request has waited `maxQueueDelayMicroseconds`. At most one
 * batch per instance is in flight, so while every instance is busy new requests accumulate and
 * the next batch is larger: throughput adapts to load with no tuning.
 *
 * Requests that already carry a batch dimension count by their rows. Inputs whose non-batch
 * dimensions differ are batched together only where a ragged policy allows padding; results are
 * sliced back to each caller exactly.
 */
import { allocate, numericElement, type Datatype, type TensorData } from '../core/datatypes.js';
import { CancelledError, DeadlineExceededError, InferdError, InvalidInputError, OverloadedError, UnavailableError } from '../core/errors.js';
import type { RunTimings } from '../runtimes/types.js';
import type { Cancellation, Tensor } from '../core/types.js';
import { Fifo } from './queue.js';
import type { BatchExecutor, EachExecutor, ExecutionRecord, SchedulerObserver, SchedulerOptions, ScheduledResult } from './types.js';

/** Most requests handed to one instance at once when each runs alone. */
const MAX_GROUP = 32;

interface Pending {
  inputs: Tensor[];
  outputs: string[];
  rows: number;
  requestId: string;
  enqueuedAt: number; // performance.now() ms
  deadline: number; // performance.now() ms; Infinity when none
  signal: Cancellation | undefined;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
  /** Nanoseconds it waited in the queue; set when it leaves. */
  queueNs: number;
  resolve(result: ScheduledResult): void;
  reject(error: Error): void;
}

export interface SubmitOptions {
  priority?: number;
  /** Milliseconds the request may wait in the queue; overrides the default. */
  timeoutMs?: number;
  /** Absolute deadline (Date.now() ms) of the whole request. */
  deadline?: number;
  signal?: Cancellation;
  /** Correlation id, passed to the worker so its log lines carry it. */
  requestId?: string;
}

const noop = (): void => undefined;
/**
 * The request whose promise is being made: a promise's executor runs at once, inside its
 * constructor, so one shared executor hands the settle functions to it without a new closure
 * (and the context it would capture) per request.
 */
let capturing: Pending | undefined;
function captureSettlers(resolve: (result: ScheduledResult) => void, reject: (error: Error) => void): void {
  capturing!.resolve = resolve;
  capturing!.reject = reject;
  capturing = undefined;
}

export class Scheduler {
  private readonly queues: Fifo<Pending>[];
  private queued = 0;
  private inFlight = 0;
  private delayTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  /** Requests run one per execution, and the executor can take several in one hand-off. */
  private readonly grouped: boolean;

  constructor(
    private readonly options: SchedulerOptions,
    private readonly execute: BatchExecutor,
    private readonly observer?: SchedulerObserver,
    private readonly executeEach?: EachExecutor,
  ) {
    this.queues = Array.from({ length: Math.max(1, options.priorityLevels) }, () => new Fifo<Pending>());
    this.grouped = executeEach !== undefined && (!options.dynamicBatching || options.maxBatchSize === 0);
  }

  get queueSize(): number {
    return this.queued;
  }

  get executing(): number {
    return this.inFlight;
  }

  /** `now`: performance.now() as the caller read it a moment ago, to spare a clock read. */
  submit(inputs: Tensor[], outputs: string[], options: SubmitOptions = {}, now = performance.now()): Promise<ScheduledResult> {
    if (this.closed) return Promise.reject(new UnavailableError(`model '${this.options.model}' version ${this.options.version} is unloading`, 1));
    if (this.queued >= this.options.maxQueueSize) {
      this.observer?.onRejected('queue_full');
      return Promise.reject(
        new OverloadedError(`the queue of model '${this.options.model}' is full (${this.options.maxQueueSize} requests waiting); retry later`),
      );
    }
    const rows = this.rowsOf(inputs);
    const level = this.levelOf(options.priority);
    let deadline = Infinity;
    const timeoutMs = options.timeoutMs ?? this.options.defaultQueueTimeoutMs;
    if (timeoutMs > 0) deadline = now + timeoutMs;
    if (options.deadline !== undefined) deadline = Math.min(deadline, now + (options.deadline - Date.now()));
    if (deadline <= now) return Promise.reject(new DeadlineExceededError('the request deadline had already passed when it arrived'));

    const pending: Pending = { inputs, outputs, rows, requestId: options.requestId ?? '', enqueuedAt: now, deadline, signal: options.signal, timer: undefined, settled: false, queueNs: 0, resolve: noop, reject: noop };
    capturing = pending;
    const answer = new Promise<ScheduledResult>(captureSettlers);
    if (deadline !== Infinity) {
      pending.timer = setTimeout(() => this.expire(pending), deadline - now);
    }
    this.queues[level]!.push(pending);
    this.queued++;
    try {
      this.dispatch();
    } catch (error) {
      // As when dispatch ran inside the promise's executor: a throw rejects this request.
      pending.reject(error as Error);
    }
    return answer;
  }

  private levelOf(priority: number | undefined): number {
    const p = priority ?? this.options.defaultPriority;
    if (!Number.isInteger(p) || p < 1 || p > this.options.priorityLevels) {
      throw new InvalidInputError(`priority must be an integer from 1 (highest) to ${this.options.priorityLevels}, got ${p}`);
    }
    return p - 1;
  }

  private rowsOf(inputs: Tensor[]): number {
    if (this.options.maxBatchSize === 0) return 1;
    const rows = inputs[0]?.shape[0] ?? 1;
    for (const t of inputs) {
      if (t.shape.length === 0 || t.shape[0] !== rows) {
        throw new InvalidInputError(`every input must have the same batch size as its first dimension; '${t.name}' has shape [${t.shape.join(', ')}], expected ${rows} rows`);
      }
    }
    if (rows > this.options.maxBatchSize) {
      throw new InvalidInputError(`the request has ${rows} rows but model '${this.options.model}' accepts at most ${this.options.maxBatchSize} per request (max_batch_size)`);
    }
    if (rows === 0) throw new InvalidInputError('the request has a batch dimension of 0: nothing to infer');
    return rows;
  }

  private expire(p: Pending): void {
    p.timer = undefined;
    if (p.settled) return;
    this.settle(p);
    this.observer?.onRejected('timeout');
    p.reject(new DeadlineExceededError(`the request waited ${Math.round(performance.now() - p.enqueuedAt)} ms in the queue of model '${this.options.model}' and timed out before it could run`));
  }

  /** Marks a request as answered; it stays in its queue until dispatch skips over it. */
  private settle(p: Pending): void {
    p.settled = true;
    this.queued--;
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
  }

  /** Drops answered, cancelled and expired requests from the head of a queue. */
  private pruneHead(queue: Fifo<Pending>, now: number): void {
    for (let p = queue.peek(); p !== undefined; p = queue.peek()) {
      if (p.settled) {
        queue.shift();
        continue;
      }
      if (p.signal?.aborted) {
        queue.shift();
        this.settle(p);
        this.observer?.onRejected('cancelled');
        p.reject(new CancelledError('the caller went away before the request ran'));
        continue;
      }
      if (p.deadline <= now) {
        queue.shift();
        this.expire(p);
        continue;
      }
      return;
    }
  }

  private dispatch(): void {
    while (this.inFlight < this.options.instances && this.queued > 0) {
      const now = performance.now();
      let queue: Fifo<Pending> | undefined;
      for (const q of this.queues) {
        this.pruneHead(q, now);
        if (q.length > 0) {
          queue = q;
          break;
        }
      }
      if (!queue) return;
      const batch = this.formBatch(queue, now);
      if (batch === undefined) return; // waiting for more requests or the delay
      this.run(batch, now);
    }
    this.notifyIdle();
  }

  /**
   * Takes requests from the head of `queue` into a batch, or returns undefined when the batcher
   * should wait (batch not full, not preferred, oldest request younger than the delay).
   */
  private formBatch(queue: Fifo<Pending>, now: number): Pending[] | undefined {
    const head = queue.peek()!;
    const dynamic = this.options.dynamicBatching;
    if (!dynamic || this.options.maxBatchSize === 0) {
      queue.shift();
      return this.grouped ? this.takeGroup(queue, head, now) : [head];
    }
    const max = this.options.maxBatchSize;
    const picked: number[] = [0];
    const sizes: number[] = [head.rows]; // cumulative rows after each pick
    let rows = head.rows;
    let scanned = 1;
    // Scan a bounded window so that a request incompatible with the head never starves the rest.
    for (let i = 1; i < queue.length && rows < max && scanned < 4 * max; i++, scanned++) {
      const p = queue.peek(i)!;
      if (p.settled || p.signal?.aborted || p.deadline <= now) continue;
      if (rows + p.rows > max) continue;
      if (!this.compatible(head, p)) continue;
      picked.push(i);
      rows += p.rows;
      sizes.push(rows);
    }
    let take = picked.length;
    const waitedUs = (now - head.enqueuedAt) * 1000;
    if (rows < max && waitedUs < dynamic.maxQueueDelayMicroseconds) {
      // Not full and the oldest request may still wait: go now only with a preferred size.
      let best = -1;
      for (let k = sizes.length - 1; k >= 0 && best < 0; k--) if (dynamic.preferredBatchSizes.includes(sizes[k]!)) best = k;
      if (best < 0) return this.waitFor(head, dynamic.maxQueueDelayMicroseconds, now);
      take = best + 1;
    }
    const chosen = picked.slice(0, take);
    const batch = chosen.map((i) => queue.peek(i)!);
    queue.removeAt(chosen);
    return batch;
  }

  /**
   * Without batching each request is its own run, but the requests waiting for an instance go to
   * it together (one message each way for all of them); the waiting requests are shared out
   * among all instances, so that one freeing a moment before another does not take them all
   * and leave the other idle.
   */
  private takeGroup(queue: Fifo<Pending>, head: Pending, now: number): Pending[] {
    const size = Math.min(MAX_GROUP, Math.ceil(this.queued / this.options.instances));
    const group = [head];
    while (group.length < size) {
      this.pruneHead(queue, now);
      const next = queue.shift();
      if (next === undefined) break;
      group.push(next);
    }
    return group;
  }

  private waitFor(head: Pending, delayUs: number, now: number): undefined {
    if (this.delayTimer === undefined) {
      const remainingMs = Math.max(0, delayUs / 1000 - (now - head.enqueuedAt));
      this.delayTimer = setTimeout(() => {
        this.delayTimer = undefined;
        this.dispatch();
      }, remainingMs);
    }
    return undefined;
  }

  private compatible(a: Pending, b: Pending): boolean {
    if (a.outputs.length !== b.outputs.length) return false;
    for (let i = 0; i < a.outputs.length; i++) if (a.outputs[i] !== b.outputs[i]) return false;
    if (a.inputs.length !== b.inputs.length) return false;
    for (let i = 0; i < a.inputs.length; i++) {
      const x = a.inputs[i]!;
      // Clients send inputs in one order: the same place is looked at first.
      const same = b.inputs[i]!;
      const y = same.name === x.name ? same : b.inputs.find((t) => t.name === x.name);
      if (!y || y.datatype !== x.datatype || y.shape.length !== x.shape.length) return false;
      if (this.options.ragged[x.name]?.kind === 'pad') continue;
      for (let d = 1; d < x.shape.length; d++) if (x.shape[d] !== y.shape[d]) return false;
    }
    return true;
  }

  private run(batch: Pending[], now: number): void {
    if (this.delayTimer !== undefined) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
    for (const p of batch) {
      this.settle(p);
      p.queueNs = (now - p.enqueuedAt) * 1e6;
      // The deadline covers the run too: a caller whose deadline passes while the model runs is
      // answered then; the run goes on for the rest of its batch.
      if (p.deadline !== Infinity) {
        p.timer = setTimeout(() => {
          p.timer = undefined;
          this.observer?.onRejected('timeout');
          p.reject(new DeadlineExceededError(`the request deadline passed while model '${this.options.model}' was running it`));
        }, Math.max(0, p.deadline - now));
      }
    }
    this.inFlight++;
    void (this.grouped ? this.executeGroup(batch) : this.execute1(batch)).finally(() => {
      for (const p of batch) if (p.timer) clearTimeout(p.timer);
      this.inFlight--;
      this.dispatch();
    });
  }

  /**
   * Runs a batch and answers its requests. When the run fails for a reason a request may have
   * caused, the batch is split in two and each half run again (and so on), so only the request
   * at fault fails; at most 2n - 1 runs for n requests, on the same instance slot.
   */
  private async execute1(batch: Pending[]): Promise<void> {
    let inputs: Tensor[];
    try {
      inputs = batch.length === 1 ? batch[0]!.inputs : this.merge(batch);
    } catch (error) {
      for (const p of batch) p.reject(error as Error);
      return;
    }
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    let result: { outputs: Tensor[]; timings: RunTimings };
    try {
      result = await this.execute(inputs, batch[0]!.outputs, batch.map((p) => p.requestId));
    } catch (error) {
      if (batch.length > 1 && isolatable(error)) {
        const mid = Math.ceil(batch.length / 2);
        await this.execute1(batch.slice(0, mid));
        await this.execute1(batch.slice(mid));
        return;
      }
      for (const p of batch) p.reject(error as Error);
      return;
    }
    const { outputs, timings } = result;
    const record: ExecutionRecord = { batchRows: rows, requests: batch.length, queueNs: batch.map((p) => p.queueNs), timings, queued: this.queued };
    this.observer?.onExecution(record, outputs);
    if (batch.length === 1) {
      batch[0]!.resolve({ outputs, queueNs: batch[0]!.queueNs, timings, batchRows: rows });
      return;
    }
    let offset = 0;
    for (const p of batch) {
      const sliced: Tensor[] = new Array<Tensor>(outputs.length);
      try {
        for (let i = 0; i < outputs.length; i++) sliced[i] = sliceRows(outputs[i]!, offset, p.rows, rows);
      } catch (error) {
        p.reject(error as Error);
        offset += p.rows;
        continue;
      }
      offset += p.rows;
      p.resolve({ outputs: sliced, queueNs: p.queueNs, timings, batchRows: rows });
    }
  }

  /** Runs each request of a group on its own, in one hand-off, and answers each with its outcome. */
  private async executeGroup(group: Pending[]): Promise<void> {
    let results: Awaited<ReturnType<EachExecutor>>;
    try {
      results = await this.executeEach!(group.map((p) => ({ inputs: p.inputs, outputs: p.outputs, requestIds: [p.requestId] })));
    } catch (error) {
      for (const p of group) p.reject(error as Error);
      return;
    }
    for (let i = 0; i < group.length; i++) {
      const p = group[i]!;
      const result = results[i];
      if (result === undefined || result instanceof Error) {
        p.reject(result ?? new InferdError('INTERNAL', 'the model worker answered fewer runs than it was given'));
        continue;
      }
      const record: ExecutionRecord = { batchRows: p.rows, requests: 1, queueNs: [p.queueNs], timings: result.timings, queued: this.queued };
      this.observer?.onExecution(record, result.outputs);
      p.resolve({ outputs: result.outputs, queueNs: p.queueNs, timings: result.timings, batchRows: p.rows });
    }
  }

  /** Concatenates the batch's inputs along the first axis, padding ragged dimensions. */
  private merge(batch: Pending[]): Tensor[] {
    const first = batch[0]!;
    const merged = new Array<Tensor>(first.inputs.length);
    // Loops rather than map/find/every/reduce: this runs for every request of every batch.
    for (let k = 0; k < first.inputs.length; k++) {
      const proto = first.inputs[k]!;
      const parts = new Array<Tensor>(batch.length);
      for (let j = 0; j < batch.length; j++) {
        const inputs = batch[j]!.inputs;
        // Clients send inputs in one order: the same place is looked at first.
        const same = inputs[k];
        parts[j] = same !== undefined && same.name === proto.name ? same : inputs.find((t) => t.name === proto.name)!;
      }
      const rank = proto.shape.length;
      const shape = new Array<number>(rank).fill(0);
      for (const t of parts) {
        shape[0]! += t.shape[0]!;
        for (let d = 1; d < rank; d++) shape[d] = Math.max(shape[d]!, t.shape[d]!);
      }
      const policy = this.options.ragged[proto.name];
      let rowSize = 1;
      for (let d = 1; d < rank; d++) rowSize *= shape[d]!;
      const total = shape[0]! * rowSize;
      const out = allocate(proto.datatype, total);
      if (policy?.kind === 'pad' && !Array.isArray(out)) fillPad(out, proto.datatype, policy.value, proto.name);
      let rowOffset = 0;
      for (const t of parts) {
        copyRows(t, out, rowOffset, shape, rowSize);
        rowOffset += t.shape[0]!;
      }
      merged[k] = { name: proto.name, datatype: proto.datatype, shape, data: out };
    }
    return merged;
  }

  /** Resolves once nothing is queued or running (for draining). */
  whenIdle(): Promise<void> {
    if (this.queued === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.queued === 0 && this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Refuses new work; queued requests still run unless `reject` is given. */
  close(reject?: Error): void {
    this.closed = true;
    if (reject) {
      for (const q of this.queues) {
        for (const p of q.drain()) {
          if (p.settled) continue;
          this.settle(p);
          p.reject(reject);
        }
      }
      this.notifyIdle();
    }
  }
}

/**
 * Fills a fresh batch array with the input's pad value, encoded as its datatype stores it (the
 * half-precision bits of an FP16 pad, a BigInt for INT64). Arrays start zeroed, so 0 needs nothing.
 */
function fillPad(out: Exclude<TensorData, Uint8Array[]>, datatype: Datatype, value: number, input: string): void {
  const element = numericElement(datatype, value);
  if (element === undefined) {
    throw new InferdError('INTERNAL', `the ragged pad value ${value} of input '${input}' does not fit its datatype ${datatype}; fix ragged_inputs in the model's configuration`);
  }
  if (element === 0n || Object.is(element, 0)) return;
  if (typeof element === 'bigint') (out as BigInt64Array | BigUint64Array).fill(element);
  else (out as Exclude<typeof out, BigInt64Array | BigUint64Array>).fill(element);
}

/** Copies a tensor's rows into `out` (shaped `shape`) starting at `rowOffset`, padding per row. */
/** `rowSize`: elements per row of `shape`. */
function copyRows(t: Tensor, out: TensorData, rowOffset: number, shape: number[], rowSize: number): void {
  const rank = shape.length;
  const srcShape = t.shape;
  let sameInner = true;
  for (let d = 1; d < srcShape.length; d++) if (srcShape[d] !== shape[d]) sameInner = false;
  if (sameInner) {
    if (Array.isArray(out)) {
      const src = t.data as Uint8Array[];
      for (let i = 0; i < src.length; i++) out[rowOffset * rowSize + i] = src[i]!;
    } else {
      (out as Float32Array).set(t.data as Float32Array, rowOffset * rowSize);
    }
    return;
  }
  // Ragged: walk every source element and place it at the same index in the larger shape.
  const srcStrides = strides(srcShape);
  const dstStrides = strides(shape);
  const count = t.data.length;
  const index = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < count; flat++) {
    let rem = flat;
    let dst = rowOffset * dstStrides[0]!;
    for (let d = 0; d < rank; d++) {
      index[d] = Math.floor(rem / srcStrides[d]!);
      rem -= index[d]! * srcStrides[d]!;
      dst += index[d]! * dstStrides[d]!;
    }
    (out as unknown as unknown[])[dst] = (t.data as unknown as unknown[])[flat];
  }
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1]! * shape[d + 1]!;
  return s;
}

/** The rows [offset, offset + rows) of a batched output; a view, not a copy. */
function sliceRows(t: Tensor, offset: number, rows: number, totalRows: number): Tensor {
  if (t.shape[0] !== totalRows) {
    throw new InvalidInputError(`output '${t.name}' has shape [${t.shape.join(', ')}], whose first dimension is not the batch of ${totalRows} rows; this model cannot be batched dynamically`);
  }
  const rowSize = totalRows === 0 ? 0 : t.data.length / totalRows;
  const data = Array.isArray(t.data)
    ? t.data.slice(offset * rowSize, (offset + rows) * rowSize)
    : (t.data as Float32Array).subarray(offset * rowSize, (offset + rows) * rowSize);
  // Built in place: this runs for every output of every request of a batch.
  const shape = new Array<number>(t.shape.length);
  shape[0] = rows;
  for (let d = 1; d < shape.length; d++) shape[d] = t.shape[d]!;
  return { name: t.name, datatype: t.datatype, shape, data };
}

/**
 * Whether a failed run is worth splitting to find the request at fault: a model that refused an
 * input or failed on one. Not a timeout, a shutdown or a worker that died (splitting those
 * repeats the damage).
 */
function isolatable(error: unknown): boolean {
  if (!(error instanceof InferdError)) return true;
  if (error.code === 'INVALID_ARGUMENT') return true;
  return error.code === 'INTERNAL' && !/worker thread died/.test(error.message);
}
