/**
 * One loaded model version: its worker threads, its scheduler and its statistics. It owns its
 * lifecycle: load (threads start, sessions load and warm up) → READY → drain → unloaded.
 */
import { stat } from 'node:fs/promises';
import { InferdError, RuntimeError, UnavailableError, toInferdError } from '../core/errors.js';
import type { InferenceRequest, InferenceResponse, Parameters, RequestContext, Tensor, TensorMetadata } from '../core/types.js';
import { Scheduler } from '../batching/scheduler.js';
import type { ExecutionRecord, RaggedPolicy, ScheduledResult } from '../batching/types.js';
import type { RuntimeKind, RuntimeSpec } from '../runtimes/types.js';
import { ExecutionTimeoutError, ModelWorkerPool } from '../workers/pool.js';
import type { PriorityState } from '../workers/priority.js';
import { createExecutor, type VersionExecutor } from './executor.js';
import type { InputProfile } from '../validation/ranges.js';
import type { ModelConfig } from './config.js';
import { RangeGuard } from './input-ranges.js';
import { checkDeclared } from './signature.js';
import { VersionStatistics } from './statistics.js';

export type VersionState = 'LOADING' | 'READY' | 'UNLOADING' | 'UNAVAILABLE' | 'FAILED';

/** What the rest of the server may want to know about each execution (metrics, logs). */
export interface InferenceObserver {
  onExecution?(model: string, version: string, record: ExecutionRecord, outputs: Tensor[]): void;
  onQueueRejected?(model: string, version: string, reason: 'queue_full' | 'timeout' | 'cancelled'): void;
  onLoaded?(version: ModelVersion): void;
  onUnloaded?(version: ModelVersion): void;
  /** input_ranges in count mode: `count` values of `feature` in one request were out of range. */
  onOutOfRange?(model: string, version: string, feature: string, count: number): void;
}

export interface ModelVersionOptions {
  /** Identity of the artifact and config; default the file's size and mtime with the config. */
  fingerprint?: string;
  /** The input profile input_ranges checks against (null: none available). */
  profile?: InputProfile | null;
  /** Nice value of the version's worker threads (a shadow's are lowered); default 0. */
  nice?: number;
}

/** Request parameters inferd itself interprets; all others are echoed back in the response. */
export const OWN_PARAMETERS = new Set(['priority', 'timeout', 'binary_data_output', 'headers']);

export interface LoadedResult {
  response: InferenceResponse;
  queueNs: number;
  /** Input preparation + model run + output conversion, in the worker. */
  computeNs: number;
  inputNs: number;
  inferNs: number;
  batchRows: number;
}

/**
 * What a caller of `ModelVersion.run` does with the outcome: `answered` gives what the run
 * resolves with (it may throw to fail the request); `failed` throws the error to answer with.
 */
export interface RunContinuation<C, T> {
  answered(context: C, result: LoadedResult, version: ModelVersion): T;
  failed(context: C, error: unknown, version: ModelVersion): never;
}

/** `infer`'s continuation: the result as it is. */
const AS_LOADED: RunContinuation<unknown, LoadedResult> = {
  answered: (_context, result) => result,
  failed: (_context, error) => {
    throw error;
  },
};

export class ModelVersion {
  state: VersionState = 'LOADING';
  reason: string | undefined;
  inputs: TensorMetadata[] = [];
  outputs: TensorMetadata[] = [];
  readonly stats: VersionStatistics;
  /** Identifies the artifact and config this instance was loaded from, to detect changes. */
  fingerprint = '';
  loadMs = 0;
  private pool: VersionExecutor | undefined;
  private scheduler: Scheduler | undefined;
  private readonly outputNames: string[] = [];
  private profile: InputProfile | null;
  private rangeGuard: RangeGuard | undefined;
  /** Values out of range per feature (count mode), since the version loaded. */
  readonly outOfRange = new Map<string, number>();
  /** Runs cut off at the execution timeout in a row; reset by a run that succeeds. */
  private consecutiveTimeouts = 0;
  /** Why the version is unhealthy (repeated execution timeouts), until a run succeeds. */
  unhealthy: string | undefined;
  /** Nice value its worker threads are to run at (see setNice). */
  private nice: number;

  constructor(
    readonly name: string,
    readonly version: string,
    readonly path: string,
    readonly config: ModelConfig,
    private readonly observer: InferenceObserver = {},
    /** Level of the log lines written inside this version's worker threads. */
    private readonly logLevel = 'info',
    private readonly options: ModelVersionOptions = {},
  ) {
    this.stats = new VersionStatistics(name, version);
    this.profile = options.profile ?? null;
    this.nice = options.nice ?? 0;
  }

  /**
   * Runs the version's worker threads at this nice value (Linux): 10 lets the operating system
   * prefer every other thread of the server when cores are contended, 0 is the process's own.
   * Versions without worker threads (remote, ensembles) have nothing to lower. Resolves with the
   * workers' states once applied (empty when the version has no workers yet: they start at it).
   */
  async setNice(nice: number): Promise<PriorityState[]> {
    this.nice = nice;
    const pool = this.pool;
    return pool instanceof ModelWorkerPool ? pool.setNice(nice) : [];
  }

  /**
   * Stops one worker thread (it ran a mirrored request past the execution timeout); its pool
   * starts another in its place. True when this version has that thread.
   */
  stopWorker(threadId: number): boolean {
    const pool = this.pool;
    return pool instanceof ModelWorkerPool ? pool.stopThread(threadId) : false;
  }

  /** Each worker thread's priority now (none for versions without worker threads). */
  async workerPriorities(): Promise<PriorityState[]> {
    const pool = this.pool;
    return pool instanceof ModelWorkerPool ? pool.priorities() : [];
  }

  /** input_ranges in count mode: counts `count` values of `feature` out of range in one request. */
  recordOutOfRange(feature: string, count: number): void {
    this.outOfRange.set(feature, (this.outOfRange.get(feature) ?? 0) + count);
    this.observer.onOutOfRange?.(this.name, this.version, feature, count);
  }

  /** The range check in force, if any. */
  get ranges(): RangeGuard | undefined {
    return this.rangeGuard;
  }

  /**
   * Replaces the input profile of a serving version (a profile stored after it loaded). Throws,
   * leaving the current check in force, when the profile does not fit the input.
   */
  setProfile(profile: InputProfile | null): void {
    const c = this.config.input_ranges;
    this.rangeGuard = c && profile ? RangeGuard.bind(this.name, profile, c, this.inputs) : undefined;
    this.profile = profile;
  }

  static async fingerprintOf(path: string, config: ModelConfig): Promise<string> {
    const s = await stat(path);
    return `${s.size}:${s.mtimeMs}:${JSON.stringify(config)}`;
  }

  async load(): Promise<void> {
    const started = performance.now();
    const c = this.config;
    this.fingerprint = this.options.fingerprint ?? (await ModelVersion.fingerprintOf(this.path, c));
    const spec: RuntimeSpec = {
      kind: c.runtime as RuntimeKind,
      model: this.name,
      version: this.version,
      path: this.path,
      onnx: {
        intraOpThreads: c.onnx.intra_op_threads,
        interOpThreads: c.onnx.inter_op_threads,
        graphOptimizationLevel: c.onnx.graph_optimization_level,
        executionProviders: c.onnx.execution_providers,
        enableCpuMemArena: c.onnx.enable_cpu_mem_arena,
        enableMemPattern: c.onnx.enable_mem_pattern,
        allowSpinning: c.onnx.allow_spinning,
      },
      parameters: c.parameters,
      inputs: c.inputs,
      outputs: c.outputs,
      logLevel: this.logLevel,
      warmup: c.warmup.map((w) => ({
        name: w.name,
        batchSize: c.max_batch_size === 0 ? 1 : Math.min(w.batch_size, c.max_batch_size),
        count: w.count,
        dims: w.dims,
        inputs: Object.fromEntries(
          Object.entries(w.inputs).map(([k, v]) => [k, Array.isArray(v) ? { kind: 'data' as const, values: v } : { kind: v }]),
        ),
      })),
    };
    // Worker threads for onnx and js; remote and ensemble versions run on this thread (I/O only).
    const pool =
      createExecutor(c) ??
      new ModelWorkerPool({
        instances: c.instances,
        spec,
        executionTimeoutMs: c.execution.timeout_ms,
        maxOldGenerationSizeMb: c.execution.worker_heap_mb,
        nice: this.nice,
      });
    this.pool = pool;
    try {
      const signature = await pool.ready();
      const problems = [...checkDeclared('input', c.inputs, signature.inputs), ...checkDeclared('output', c.outputs, signature.outputs)];
      if (problems.length > 0) throw new RuntimeError(problems.join('; '));
      if (c.max_batch_size > 0) {
        const unbatched = signature.inputs.filter((t) => t.shape.length === 0 || t.shape[0] !== -1);
        if (unbatched.length > 0) {
          throw new RuntimeError(
            `max_batch_size is ${c.max_batch_size} but input(s) ${unbatched.map((t) => `'${t.name}' [${t.shape.join(', ')}]`).join(', ')} have no dynamic first (batch) dimension; set max_batch_size: 0`,
          );
        }
      }
      this.inputs = signature.inputs;
      this.outputs = signature.outputs;
      if (c.input_ranges && this.profile) this.rangeGuard = RangeGuard.bind(this.name, this.profile, c.input_ranges, this.inputs);
    } catch (error) {
      this.state = 'FAILED';
      this.reason = toInferdError(error).message;
      this.pool = undefined;
      await pool.close().catch(() => undefined);
      throw error;
    }
    this.outputNames.push(...this.outputs.map((o) => o.name));
    const ragged: Record<string, RaggedPolicy> = {};
    for (const [input, policy] of Object.entries(c.ragged_inputs)) ragged[input] = 'pad' in policy ? { kind: 'pad', value: policy.pad } : { kind: 'equal_shape' };
    this.scheduler = new Scheduler(
      {
        model: this.name,
        version: this.version,
        maxBatchSize: c.max_batch_size,
        dynamicBatching: c.dynamic_batching
          ? { maxQueueDelayMicroseconds: c.dynamic_batching.max_queue_delay_microseconds, preferredBatchSizes: c.dynamic_batching.preferred_batch_size }
          : undefined,
        instances: c.instances,
        maxQueueSize: c.queue.max_size,
        defaultQueueTimeoutMs: c.queue.timeout_ms,
        priorityLevels: c.queue.priority_levels,
        defaultPriority: c.queue.default_priority,
        ragged,
      },
      (inputs, outputs, requestIds) => pool.infer(inputs, outputs, requestIds).then(
        (result) => {
          this.runSucceeded();
          return result;
        },
        (error: unknown) => {
          if (error instanceof ExecutionTimeoutError) this.runTimedOut(error.timeoutMs);
          throw error;
        },
      ),
      {
        onExecution: (record, outputs) => {
          this.stats.recordExecution(record.batchRows, record.timings);
          this.observer.onExecution?.(this.name, this.version, record, outputs);
        },
        onRejected: (reason) => this.observer.onQueueRejected?.(this.name, this.version, reason),
      },
      pool instanceof ModelWorkerPool
        ? (runs) =>
            pool.inferEach(runs).then(
              (results) => {
                if (results.some((r) => !(r instanceof Error))) this.runSucceeded();
                return results;
              },
              (error: unknown) => {
                if (error instanceof ExecutionTimeoutError) this.runTimedOut(error.timeoutMs);
                throw error;
              },
            )
        : undefined,
    );
    this.loadMs = performance.now() - started;
    this.state = 'READY';
    this.observer.onLoaded?.(this);
  }

  private runSucceeded(): void {
    this.consecutiveTimeouts = 0;
    this.unhealthy = undefined;
  }

  private runTimedOut(timeoutMs: number): void {
    this.consecutiveTimeouts++;
    if (this.consecutiveTimeouts >= this.config.execution.unhealthy_after_timeouts) {
      this.unhealthy = `unhealthy: ${this.consecutiveTimeouts} runs in a row exceeded the execution timeout of ${timeoutMs} ms`;
    }
  }

  /** Serving, and not marked unhealthy. */
  get healthy(): boolean {
    return this.state === 'READY' && this.unhealthy === undefined;
  }

  /**
   * The shutdown deadline has passed: queued requests and runs in progress are answered 503 at
   * once (the workers running them are terminated).
   */
  forceStop(): void {
    const reason = new UnavailableError(`the server shut down before model '${this.name}' version ${this.version} answered this request`);
    this.scheduler?.close(reason);
    this.pool?.abortRunning(reason);
  }

  get queueSize(): number {
    return this.scheduler?.queueSize ?? 0;
  }

  /** Runs one request through the scheduler and workers; resolves with the answer and its timings. */
  infer(request: InferenceRequest, context: RequestContext): Promise<LoadedResult> {
    return this.run(request, context, AS_LOADED);
  }

  /**
   * Like `infer`, with the caller's own handling of the outcome run in the same reaction as the
   * version's bookkeeping: one promise fewer per request than a `then` on `infer`'s answer.
   * `after.failed` runs for every failure, also one found before the request is scheduled.
   */
  // Not async: one `then` costs fewer allocations per request than an async frame and its await.
  run<C extends RequestContext, T>(request: InferenceRequest, context: C, after: RunContinuation<C, T>): Promise<T> {
    const scheduler = this.scheduler;
    if (this.state !== 'READY' || !scheduler) {
      return this.refused(context, after, new UnavailableError(`model '${this.name}' version ${this.version} is ${this.state.toLowerCase()}`, 1));
    }
    const started = performance.now();
    let scheduled: Promise<ScheduledResult>;
    try {
      // Signature and ranges were checked by the pipeline (pipeline/policies/validate.ts).
      const requested = request.outputs && request.outputs.length > 0 ? request.outputs.map((o) => o.name) : this.outputNames;
      // The context carries the scheduler's options (priority, deadline, signal, requestId) itself.
      scheduled = scheduler.submit(request.inputs, requested, context, started);
    } catch (error) {
      scheduled = Promise.reject(error);
    }
    return scheduled.then(
      (result) => {
        let loaded: LoadedResult;
        try {
          loaded = this.answered(request, started, result);
        } catch (error) {
          return after.failed(context, error, this);
        }
        return after.answered(context, loaded, this);
      },
      (error: unknown) => after.failed(context, this.failure(started, error), this),
    );
  }

  /** A request refused before it reached the scheduler, told to `after` like any other failure. */
  private refused<C extends RequestContext, T>(context: C, after: RunContinuation<C, T>, error: InferdError): Promise<T> {
    try {
      return Promise.resolve(after.failed(context, error, this));
    } catch (thrown) {
      return Promise.reject(thrown);
    }
  }

  private answered(request: InferenceRequest, started: number, result: ScheduledResult): LoadedResult {
    try {
      const rows = this.config.max_batch_size === 0 ? 1 : (request.inputs[0]?.shape[0] ?? 1);
      const totalNs = (performance.now() - started) * 1e6;
      this.stats.recordSuccess(rows, totalNs, result.queueNs, result.timings);
      const response: InferenceResponse = { model_name: this.name, model_version: this.version, outputs: result.outputs };
      if (request.id !== undefined) response.id = request.id;
      const params = request.parameters;
      if (params) {
        let echoed: Parameters | undefined;
        for (const key in params) {
          if (OWN_PARAMETERS.has(key)) continue;
          (echoed ??= {})[key] = params[key]!;
        }
        if (echoed) response.parameters = echoed;
      }
      const t = result.timings;
      return { response, queueNs: result.queueNs, computeNs: t.inputNs + t.inferNs + t.outputNs, inputNs: t.inputNs, inferNs: t.inferNs, batchRows: result.batchRows };
    } catch (error) {
      throw this.failure(started, error);
    }
  }

  /** Counts a failed request and gives the error to answer it with. */
  private failure(started: number, error: unknown): InferdError {
    this.stats.recordFailure((performance.now() - started) * 1e6);
    return error instanceof InferdError ? error : toInferdError(error);
  }

  /** Stops taking requests, lets queued and running ones finish (up to the deadline), then frees the threads. */
  async unload(deadlineMs = 30_000): Promise<void> {
    if (this.state === 'UNAVAILABLE') return;
    this.state = 'UNLOADING';
    const scheduler = this.scheduler;
    if (scheduler) {
      scheduler.close();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        scheduler.whenIdle().then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), deadlineMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) scheduler.close(new UnavailableError(`model '${this.name}' version ${this.version} was unloaded before this request ran`));
    }
    // Workers get a moment to free their sessions; a stuck one is terminated.
    await this.pool?.close(Math.min(5000, deadlineMs + 500));
    this.pool = undefined;
    this.scheduler = undefined;
    this.state = 'UNAVAILABLE';
    this.observer.onUnloaded?.(this);
  }
}
