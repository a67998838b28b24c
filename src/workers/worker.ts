/**
 * Worker-thread entry: hosts one model version's runtime. The model loads (and warms up) as soon
 * as the thread starts, so a replacement worker after a crash is ready before it gets work.
 * Messages carry tensors whose buffers are transferred, never serialised as JSON.
 */
import { threadId, workerData } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import { Piscina } from 'piscina';
import { allocate } from '../core/datatypes.js';
import { InferdError } from '../core/errors.js';
import { elementCount, fromValues, packTensors, transferablesOf } from '../core/tensor.js';
import type { Tensor, TensorMetadata } from '../core/types.js';
import { loadRuntime, type ModelRuntime, type WarmupSpec } from '../runtimes/index.js';
import { mirrorChannelName, serveMirrors } from './mirror.js';
import { ThreadPriority } from './priority.js';
import type { RunOutcome, RunTask, WorkerData, WorkerReply, WorkerTask } from './protocol.js';
import { fitsPacked, packOutcomes, unpackRuns } from './wire.js';

const { spec, niceWanted } = workerData as WorkerData;
// Before the model loads, so threads the runtime starts inherit the nice value.
const priority = new ThreadPriority(niceWanted);
priority.apply();

// Lines written here go straight to the process's stdout, like the main thread's, and carry the
// correlation ids of the requests they concern.
const log = pino({ name: 'inferd', level: spec.logLevel, base: { model: spec.model, version: spec.version, thread: threadId } }, pino.destination({ fd: 1, sync: true }));

const runtimeReady: Promise<ModelRuntime> = (async () => {
  const runtime = await loadRuntime(spec);
  for (const warmup of spec.warmup) {
    const inputs = warmupInputs(runtime.inputs, warmup);
    for (let i = 0; i < warmup.count; i++) await runtime.run(inputs, []);
  }
  return runtime;
})();
// Reported to callers through the task that awaits it; never an unhandled rejection.
runtimeReady.catch(() => undefined);

// Requests mirrored to this version while it is a shadow arrive here, not through the pool.
// A model's log lines from them say so.
let mirrorLog: Logger | undefined;
const mirrors = serveMirrors(mirrorChannelName(spec.model, spec.version, spec.path), runtimeReady, {
  requestIds: ['shadow'],
  get log(): Logger {
    return (mirrorLog ??= log.child({ shadow: true }));
  },
});

function warmupInputs(inputs: readonly TensorMetadata[], warmup: WarmupSpec): Tensor[] {
  return inputs.map((meta) => {
    const dims = warmup.dims[meta.name];
    let dynamic = 0;
    const shape = meta.shape.map((d, axis) => {
      if (d >= 0) return d;
      if (axis === 0) return warmup.batchSize;
      return dims?.[dynamic++] ?? 1;
    });
    const count = elementCount(shape);
    const source = warmup.inputs[meta.name];
    let data;
    if (source?.kind === 'data') {
      data = fromValues(meta.datatype, source.values, `warm-up '${warmup.name}' input '${meta.name}'`);
    } else {
      data = allocate(meta.datatype, count);
      if (source?.kind === 'random' && !Array.isArray(data)) {
        const typed = data as Float32Array;
        const big = typeof typed[0] === 'bigint';
        for (let i = 0; i < count; i++) (typed as unknown as unknown[])[i] = big ? BigInt(Math.floor(Math.random() * 4)) : Math.random() < 0.5 ? 0 : 1;
        if (meta.datatype === 'FP32' || meta.datatype === 'FP64') for (let i = 0; i < count; i++) typed[i] = Math.random();
      }
    }
    return { name: meta.name, datatype: meta.datatype, shape, data };
  });
}

export default async function handle(task: WorkerTask): Promise<WorkerReply | ReturnType<typeof Piscina.move>> {
  priority.apply();
  if (task.kind === 'priority') return { kind: 'priority', state: priority.state() };
  const runtime = await runtimeReady;
  if (task.kind === 'describe') {
    return { kind: 'describe', inputs: runtime.inputs, outputs: runtime.outputs, threadId };
  }
  if (task.kind === 'close') {
    mirrors.close();
    await runtime.close();
    return { kind: 'closed' };
  }
  if (task.kind === 'infer-each' || task.kind === 'infer-packed') {
    const runs = task.kind === 'infer-packed' ? unpackRuns(task.group) : task.runs;
    const outcomes: RunOutcome[] = [];
    const outputs: Tensor[][] = [];
    for (let i = 0; i < runs.length; i++) {
      Atomics.store(task.progress, 1, Date.now() - task.startedAt);
      Atomics.store(task.progress, 0, i);
      const outcome = await runOne(runtime, runs[i]!);
      if (outcome.kind === 'result') outputs.push(outcome.outputs);
      outcomes.push(outcome);
    }
    // One buffer for all the runs' outputs: one transfer instead of one per tensor.
    const packed = packTensors(outputs);
    if (fitsPacked(outputs, packed)) {
      const group = packOutcomes(
        outcomes.map((o) => (o.kind === 'result' ? o : { failed: o.message, inputCaused: o.inputCaused })),
        packed,
      );
      return Piscina.move(new TransferableReply({ kind: 'results-packed', group }, [packed]) as unknown as ArrayBuffer);
    }
    const reply: WorkerReply = { kind: 'results', outcomes };
    const transfer: ArrayBuffer[] = packed === undefined ? [] : [packed];
    for (const tensors of outputs) transferablesOf(tensors, transfer);
    if (transfer.length === 0) return reply;
    return Piscina.move(new TransferableReply(reply, transfer) as unknown as ArrayBuffer);
  }
  const reply = await runOne(runtime, task);
  if (reply.kind === 'failed') return reply;
  const transfer = transferablesOf(reply.outputs);
  if (transfer.length === 0) return reply;
  return Piscina.move(new TransferableReply(reply, transfer) as unknown as ArrayBuffer);
}

async function runOne(runtime: ModelRuntime, task: RunTask): Promise<RunOutcome> {
  const requestIds = task.requestIds;
  // The child logger is built only when the model writes a line.
  let child: Logger | undefined;
  const context = {
    requestIds,
    get log(): Logger {
      return (child ??= log.child({ requestIds }));
    },
  };
  try {
    const { outputs, timings } = await runtime.run(task.inputs, task.outputs, context);
    return { kind: 'result', outputs, timings };
  } catch (error) {
    // Errors cross the thread boundary as plain data: their class would not survive the copy.
    const inputCaused = error instanceof InferdError && error.code === 'INVALID_ARGUMENT';
    log[inputCaused ? 'warn' : 'error']({ requestIds, err: error }, inputCaused ? 'the model refused an input' : 'model run failed');
    return { kind: 'failed', message: error instanceof Error ? error.message : String(error), inputCaused };
  }
}

/** Piscina's protocol for returning a value together with its transfer list. */
class TransferableReply {
  constructor(
    private readonly value: WorkerReply,
    private readonly buffers: ArrayBuffer[],
  ) {}
  get [Piscina.transferableSymbol](): ArrayBuffer[] {
    return this.buffers;
  }
  get [Piscina.valueSymbol](): WorkerReply {
    return this.value;
  }
}
