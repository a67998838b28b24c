/**
 * The worker threads that host one model version: `instances` threads, each with its own copy of
 * the model (Triton's instance group). Built on piscina, which replaces a worker that dies and
 * fails the tasks it held; the scheduler in front of it keeps at most one batch per instance in
 * flight, so piscina's own queue stays empty and batches form while instances are busy.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { RuntimeError } from '../core/errors.js';
import { ownBuffers, transferablesOf } from '../core/tensor.js';
import type { Tensor, TensorMetadata } from '../core/types.js';
import type { RunTimings, RuntimeSpec } from '../runtimes/types.js';
import type { WorkerReply, WorkerTask } from './protocol.js';

export interface WorkerPoolOptions {
  instances: number;
  spec: RuntimeSpec;
  /** Bound on one worker's heap, so a runaway model fails alone instead of taking the process. */
  maxOldGenerationSizeMb?: number;
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
  private readonly piscina: Piscina;
  readonly instances: number;
  private closed = false;

  constructor(options: WorkerPoolOptions) {
    const entry = workerEntry();
    this.instances = options.instances;
    this.piscina = new Piscina({
      filename: entry.filename,
      execArgv: entry.execArgv,
      minThreads: options.instances,
      maxThreads: options.instances,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      concurrentTasksPerWorker: 1,
      workerData: options.spec,
      resourceLimits: options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } : undefined,
      name: 'default',
    });
    // A worker that crashes with no task is replaced by piscina; nothing to fail.
    this.piscina.on('error', () => undefined);
  }

  /**
   * Waits until every instance has loaded (and warmed up) its model; returns the signature.
   * Idle workers are picked first, so `instances` concurrent tasks reach every worker once.
   */
  async ready(): Promise<{ inputs: TensorMetadata[]; outputs: TensorMetadata[] }> {
    const replies = await Promise.all(Array.from({ length: this.instances }, () => this.piscina.run({ kind: 'describe' } satisfies WorkerTask)));
    const first = replies[0] as Extract<WorkerReply, { kind: 'describe' }>;
    return { inputs: first.inputs, outputs: first.outputs };
  }

  async infer(inputs: Tensor[], outputs: string[], requestIds: string[] = []): Promise<{ outputs: Tensor[]; timings: RunTimings }> {
    const task: WorkerTask = { kind: 'infer', inputs: ownBuffers(inputs), outputs, requestIds };
    let reply: WorkerReply;
    try {
      reply = (await this.piscina.run(task, { transferList: transferablesOf(inputs) as unknown as readonly import('node:worker_threads').Transferable[] })) as WorkerReply;
    } catch (error) {
      if (error instanceof Error && error.name.endsWith('Error') && 'code' in error) throw error;
      const message = (error as Error).message ?? String(error);
      if (/worker exited|terminated/i.test(message)) throw new RuntimeError(`the model's worker thread died while running this request (${message})`, error);
      throw error;
    }
    if (reply.kind !== 'result') throw new RuntimeError('unexpected reply from the model worker');
    return reply;
  }

  /** Worker thread ids, for diagnostics. */
  get threadIds(): number[] {
    return this.piscina.threads.map((t) => t.threadId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Release each runtime before the threads end, so native sessions are freed deterministically.
    await Promise.allSettled(Array.from({ length: this.instances }, () => this.piscina.run({ kind: 'close' } satisfies WorkerTask)));
    await this.piscina.destroy();
  }
}
