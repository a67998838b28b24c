/**
 * The worker threads that host one model version: `instances` threads, each with its own copy of
 * the model (Triton's instance group). Built on piscina, which replaces a worker that dies and
 * fails the tasks it held; the scheduler in front of it keeps at most one batch per instance in
 * flight, so piscina's own queue stays empty and batches form while instances are busy.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { DeadlineExceededError, InferdError, InvalidInputError, RuntimeError } from '../core/errors.js';
import { ownBuffers, packTensors, transferablesOf } from '../core/tensor.js';
import type { Tensor, TensorMetadata } from '../core/types.js';
import type { RunTimings, RuntimeSpec } from '../runtimes/types.js';
import { WANTED_NICE, type PriorityState } from './priority.js';
import type { RunOutcome, RunTask, WorkerData, WorkerReply, WorkerTask } from './protocol.js';
import { fitsPacked, packRuns, unpackOutcomes } from './wire.js';

export interface WorkerPoolOptions {
  instances: number;
  spec: RuntimeSpec;
  /** Bound on one worker's heap, so a runaway model fails alone instead of taking the process. */
  maxOldGenerationSizeMb?: number;
  /** Longest one run may take; past it the worker is terminated and replaced. */
  executionTimeoutMs?: number;
  /** Nice value the worker threads run at (Linux; 0: the process's own). See setNice. */
  nice?: number;
}

/** One set of worker threads; a pool replaces its set for a priority change its workers cannot apply to themselves. */
interface Generation {
  piscina: Piscina;
  /** The nice value its workers run at, read by each of them before every task (slot WANTED_NICE). */
  niceWanted: Int32Array;
  /** Tasks posted to it and not answered yet. */
  inFlight: number;
  whenIdle?: () => void;
}

/** How long retired workers may take to finish the runs they hold when the model has no execution timeout. */
const RETIRE_DRAIN_MS = 30_000;

/** A run cut off at the model's execution timeout; its worker was terminated and replaced. */
export class ExecutionTimeoutError extends DeadlineExceededError {
  constructor(readonly timeoutMs: number) {
    super(`the model ran longer than its execution timeout of ${timeoutMs} ms; its worker was terminated and is being replaced`);
  }
}

function workerEntry(): { filename: string; execArgv: string[] } {
  // Compiled: dist/workers/worker.js. From source (tests, tsx): the .ts file, loaded through tsx.
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    return { filename: fileURLToPath(new URL('./worker.ts', self)), execArgv: ['--import', 'tsx'] };
  }
  return { filename: fileURLToPath(new URL('./worker.js', self)), execArgv: [] };
}

export class ModelWorkerPool {
  private current: Generation;
  readonly instances: number;
  private closed = false;
  private readonly executionTimeoutMs: number | undefined;
  /** Runs in progress, so a forced shutdown can cut them off. */
  private readonly running = new Set<RunAbort>();
  /** The nice value the workers run at (see setNice). */
  private nice: number;
  /** Priority changes, one after the other. */
  private niceChange: Promise<unknown> = Promise.resolve();
  /** Replaced sets of workers still finishing their runs. */
  private readonly retiring = new Set<Promise<void>>();

  constructor(private readonly options: WorkerPoolOptions) {
    this.instances = options.instances;
    this.executionTimeoutMs = options.executionTimeoutMs;
    this.nice = options.nice ?? 0;
    this.current = this.startGeneration();
  }

  private startGeneration(): Generation {
    const entry = workerEntry();
    const options = this.options;
    const niceWanted = new Int32Array(new SharedArrayBuffer(4));
    Atomics.store(niceWanted, WANTED_NICE, this.nice);
    const piscina = new Piscina({
      filename: entry.filename,
      execArgv: entry.execArgv,
      minThreads: options.instances,
      maxThreads: options.instances,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      concurrentTasksPerWorker: 1,
      // Idle workers wait for messages on their event loop rather than blocked in Atomics.wait:
      // requests mirrored to a shadow version reach its workers on a channel of their own (see
      // mirror.ts), and the model's asynchronous runs must be able to finish between tasks.
      atomics: 'disabled',
      workerData: { spec: options.spec, niceWanted } satisfies WorkerData,
      resourceLimits: options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } : undefined,
      name: 'default',
      // Piscina's own wait and run time histograms: read by nothing here, recorded for every task.
      recordTiming: false,
    });
    // A worker that crashes with no task is replaced by piscina; nothing to fail.
    piscina.on('error', () => undefined);
    return { piscina, niceWanted, inFlight: 0 };
  }

  /** Posts a task to one set of workers, counted so a replaced set is retired once it has answered. */
  private async post(generation: Generation, task: WorkerTask, options?: Parameters<Piscina['run']>[1]): Promise<WorkerReply> {
    generation.inFlight += 1;
    try {
      return (await generation.piscina.run(task, options)) as WorkerReply;
    } finally {
      generation.inFlight -= 1;
      if (generation.inFlight === 0) generation.whenIdle?.();
    }
  }

  /**
   * `instances` concurrent tasks to a set: piscina gives them to idle workers first, so each
   * worker usually gets one (a worker not yet started leaves its share to the others).
   */
  private toEach(generation: Generation, task: WorkerTask): Promise<WorkerReply[]> {
    return Promise.all(Array.from({ length: this.instances }, () => this.post(generation, task)));
  }

  /**
   * Waits until every instance has loaded (and warmed up) its model; returns the signature.
   */
  async ready(): Promise<{ inputs: TensorMetadata[]; outputs: TensorMetadata[] }> {
    const replies = await this.toEach(this.current, { kind: 'describe' });
    const first = replies[0] as Extract<WorkerReply, { kind: 'describe' }>;
    return { inputs: first.inputs, outputs: first.outputs };
  }

  /**
   * Sets the nice value of the worker threads (Linux; elsewhere the states say unsupported and
   * nothing changes). A worker started later (a replacement after a crash) applies it before
   * loading the model, so the threads the runtime starts inherit it.
   *
   * Lowering a runtime that runs on its worker's thread alone (onnx with one intra-op thread,
   * js) happens in place: every worker applies it before its next task, idle ones at once.
   * Otherwise the workers are replaced: raising a priority back needs CAP_SYS_NICE, and neither
   * direction would reach threads onnxruntime already started. New workers start at the main
   * thread's priority, apply the new nice, load the model and take over; the old ones finish the
   * runs they hold. Resolves with each worker's state once done.
   */
  setNice(nice: number): Promise<PriorityState[]> {
    const change = this.niceChange.then(async () => {
      if (this.closed) return [];
      const before = this.nice;
      this.nice = nice;
      // Elsewhere than Linux a thread's priority cannot be set: new workers would change nothing.
      if (process.platform !== 'linux') return this.priorities();
      if (nice > before && this.runsOnWorkerThreadOnly) Atomics.store(this.current.niceWanted, WANTED_NICE, nice);
      else if (nice !== before) {
        try {
          await this.renew();
        } catch (error) {
          this.nice = before;
          throw error;
        }
      }
      return this.priorities();
    });
    this.niceChange = change.catch(() => undefined);
    return change;
  }

  /** Whether the runtime starts no threads of its own, so lowering its worker thread lowers all of it. */
  private get runsOnWorkerThreadOnly(): boolean {
    const spec = this.options.spec;
    return spec.kind !== 'onnx' || spec.onnx.intraOpThreads === 1;
  }

  /** Each worker's priority now (every worker applies the wanted nice first). */
  async priorities(): Promise<PriorityState[]> {
    // A busy worker may leave its task to an idle one, which then answers twice: ask again (a few times) for the rest.
    const byThread = new Map<number, PriorityState>();
    for (let attempt = 0; attempt < 5 && !this.closed && byThread.size < this.instances; attempt++) {
      // A worker stopped meanwhile (a mirrored run overran the execution timeout) fails its share: asked again.
      const settled = await Promise.allSettled(Array.from({ length: this.instances }, () => this.post(this.current, { kind: 'priority' })));
      for (const outcome of settled) {
        if (outcome.status === 'rejected') continue;
        const state = (outcome.value as Extract<WorkerReply, { kind: 'priority' }>).state;
        if (!state.supported) return [state];
        byThread.set(state.tid, state);
      }
    }
    return [...byThread.values()];
  }

  /** Starts a new set of workers, switches to it once its models are loaded, and retires the old set. */
  private async renew(): Promise<void> {
    const fresh = this.startGeneration();
    try {
      await this.toEach(fresh, { kind: 'describe' });
    } catch (error) {
      await fresh.piscina.destroy();
      throw error;
    }
    if (this.closed) {
      await fresh.piscina.destroy();
      return;
    }
    const old = this.current;
    this.current = fresh;
    const retired = this.retire(old).finally(() => this.retiring.delete(retired));
    this.retiring.add(retired);
  }

  /** Lets a replaced set finish the runs it holds (bounded), then closes it. */
  private async retire(generation: Generation): Promise<void> {
    if (generation.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        generation.whenIdle = resolve;
        timer = setTimeout(resolve, this.executionTimeoutMs ?? RETIRE_DRAIN_MS);
      });
      clearTimeout(timer);
    }
    await this.closeGeneration(generation, 5000);
  }

  /**
   * One run (a request, or a batch of them) as its own task. A batch is one tensor per input,
   * which structured clone copes with as cheaply as the compact form of a group would.
   */
  async infer(inputs: Tensor[], outputs: string[], requestIds: string[] = []): Promise<{ outputs: Tensor[]; timings: RunTimings }> {
    return outcome(await this.sendRun({ inputs, outputs, requestIds }));
  }

  /**
   * Several independent runs in one hand-off to one worker, which runs them in order and answers
   * them in one message. Each run's failure is its own; the execution timeout bounds each run
   * (the worker reports which run is in progress and since when), and a run cut off by it, or a
   * worker that dies, fails the whole group.
   */
  async inferEach(runs: RunTask[]): Promise<Array<{ outputs: Tensor[]; timings: RunTimings } | Error>> {
    // A single large run keeps a buffer per input (as `infer` sends it): a model may rely on that.
    if (runs.length === 1 && inputBytes(runs[0]!.inputs) > SINGLE_PACKED_MAX_BYTES) return [outcomeOrError(await this.sendRun(runs[0]!))];
    // One buffer for all the runs' inputs: one transfer instead of one per tensor.
    const inputs = runs.map((run) => run.inputs);
    const packed = packTensors(inputs);
    if (fitsPacked(inputs, packed)) return this.sendPacked(runs, packed);
    // A run with memory of its own (a large or lent buffer, BYTES): sent as it is.
    if (runs.length === 1) return [outcomeOrError(await this.sendRun(runs[0]!))];
    const transfer: ArrayBuffer[] = packed === undefined ? [] : [packed];
    for (const run of runs) transferablesOf(run.inputs, transfer);
    return this.sendGroup((progress, startedAt) => ({ kind: 'infer-each', runs, progress, startedAt }), transfer);
  }

  /** Runs whose tensors are all in `packed` (fitsPacked), in the compact form of wire.ts. */
  private sendPacked(runs: readonly RunTask[], packed: ArrayBuffer): Promise<Array<{ outputs: Tensor[]; timings: RunTimings } | Error>> {
    const group = packRuns(runs, packed);
    return this.sendGroup((progress, startedAt) => ({ kind: 'infer-packed', group, progress, startedAt }), [packed]);
  }

  /** One run as its own task, its buffers transferred, bounded by the execution timeout. */
  private async sendRun(run: RunTask): Promise<RunOutcome> {
    const task: WorkerTask = { kind: 'infer', inputs: ownBuffers(run.inputs), outputs: run.outputs, requestIds: run.requestIds };
    const limit = this.executionTimeoutMs;
    return (await this.send(task, transferablesOf(run.inputs), (abort) => (limit === undefined ? undefined : { timer: setTimeout(() => abort(new ExecutionTimeoutError(limit)), limit) }))) as RunOutcome;
  }

  /** A group task (`infer-each`, `infer-packed`), each of its runs bounded by the execution timeout. */
  private async sendGroup(
    build: (progress: Int32Array, startedAt: number) => WorkerTask,
    transfer: ArrayBuffer[],
  ): Promise<Array<{ outputs: Tensor[]; timings: RunTimings } | Error>> {
    const progress = new Int32Array(new SharedArrayBuffer(8));
    const startedAt = Date.now();
    const limit = this.executionTimeoutMs;
    const reply = (await this.send(build(progress, startedAt), transfer, (abort) => {
      if (limit === undefined) return undefined;
      const handle = { timer: undefined as unknown as NodeJS.Timeout };
      // Fires when the run in progress may have reached the limit; re-arms when a later run began since.
      const check = (): void => {
        const left = startedAt + Atomics.load(progress, 1) + limit - Date.now();
        if (left <= 0) abort(new ExecutionTimeoutError(limit));
        else handle.timer = setTimeout(check, left);
      };
      handle.timer = setTimeout(check, limit);
      return handle;
    })) as Extract<WorkerReply, { kind: 'results' | 'results-packed' }>;
    if (reply.kind === 'results') return reply.outcomes.map(outcomeOrError);
    const outcomes = unpackOutcomes(reply.group);
    const results = new Array<{ outputs: Tensor[]; timings: RunTimings } | Error>(outcomes.length);
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i]!;
      results[i] = 'failed' in o ? (o.inputCaused ? new InvalidInputError(o.failed) : new RuntimeError(o.failed)) : o;
    }
    return results;
  }

  /** Posts one task; `arm` starts its execution timeout and returns what to clear afterwards. */
  private async send(
    task: WorkerTask,
    transfer: ArrayBuffer[],
    arm: (abort: (reason: InferdError) => void) => { timer: NodeJS.Timeout } | undefined,
  ): Promise<WorkerReply> {
    // Aborting a running piscina task terminates its worker; piscina then starts a replacement,
    // which loads the model again before it takes the next task.
    const controller = new RunAbort();
    this.running.add(controller);
    const armed = arm((reason) => controller.abort(reason));
    try {
      return await this.post(this.current, task, {
        transferList: transfer as unknown as readonly import('node:worker_threads').Transferable[],
        signal: controller as unknown as AbortSignal,
      });
    } catch (error) {
      if (controller.aborted && controller.reason instanceof InferdError) throw controller.reason;
      if (error instanceof InferdError) throw error;
      const message = (error as Error).message ?? String(error);
      if (/worker exited|terminated/i.test(message)) throw new RuntimeError(`the model's worker thread died while running this request (${message})`, error);
      throw error;
    } finally {
      if (armed !== undefined) clearTimeout(armed.timer);
      this.running.delete(controller);
    }
  }

  /** Cuts off every run in progress (their workers are terminated); each fails with `reason`. */
  abortRunning(reason: InferdError): void {
    for (const controller of this.running) controller.abort(reason);
  }

  /**
   * Terminates one worker thread of the current set (a run outside the pool's tasks overran the
   * execution timeout); piscina starts another in its place. False when there is no such thread.
   */
  stopThread(threadId: number): boolean {
    const worker = this.current.piscina.threads.find((t) => t.threadId === threadId);
    if (worker === undefined) return false;
    void worker.terminate();
    return true;
  }

  /** Worker thread ids, for diagnostics. */
  get threadIds(): number[] {
    return this.current.piscina.threads.map((t) => t.threadId);
  }

  /**
   * Releases each runtime before the threads end, so native sessions are freed deterministically;
   * a worker that does not answer within `graceMs` (a model stuck in a run) is terminated.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.closeGeneration(this.current, graceMs), ...this.retiring]);
    // A set of workers being started for a priority change is stopped by it once loaded.
    await this.niceChange;
  }

  private async closeGeneration(generation: Generation, graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const closes = Promise.allSettled(Array.from({ length: this.instances }, () => this.post(generation, { kind: 'close' })));
    await Promise.race([closes, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    await generation.piscina.destroy();
  }
}

/** Largest single run sent in the compact form (its inputs copied into one buffer). */
const SINGLE_PACKED_MAX_BYTES = 64 * 1024;

function inputBytes(tensors: readonly Tensor[]): number {
  let bytes = 0;
  for (const t of tensors) if (!Array.isArray(t.data)) bytes += (t.data as ArrayBufferView).byteLength;
  return bytes;
}

function outcome(reply: RunOutcome | WorkerReply): { outputs: Tensor[]; timings: RunTimings } {
  if (reply.kind === 'failed') throw reply.inputCaused ? new InvalidInputError(reply.message) : new RuntimeError(reply.message);
  if (reply.kind !== 'result') throw new RuntimeError('unexpected reply from the model worker');
  return reply;
}

function outcomeOrError(reply: RunOutcome): { outputs: Tensor[]; timings: RunTimings } | Error {
  try {
    return outcome(reply);
  } catch (error) {
    return error as Error;
  }
}

/**
 * The abort handle piscina takes for one run (it terminates the worker of a running task when
 * it fires). A minimal event target: an AbortController per run costs more than the run's own
 * bookkeeping on the hot path.
 */
class RunAbort {
  aborted = false;
  reason: unknown;
  private listener: (() => void) | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener;
  }

  removeEventListener(): void {
    this.listener = undefined;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }
}
