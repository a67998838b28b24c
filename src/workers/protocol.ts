/** Messages between the main thread and a model worker. Plain data and transferable buffers. */
import type { Tensor, TensorMetadata } from '../core/types.js';
import type { RunTimings, RuntimeSpec } from '../runtimes/types.js';
import type { PriorityState } from './priority.js';
import type { PackedGroup } from './wire.js';

/** What a worker starts with: the version to load, and the nice value its pool wants (shared, slot WANTED_NICE). */
export interface WorkerData {
  spec: RuntimeSpec;
  niceWanted: Int32Array;
}

/** One run of the model: a request, or a batch formed from several. */
export interface RunTask {
  inputs: Tensor[];
  outputs: string[];
  requestIds: string[];
}

export type RunOutcome =
  | { kind: 'result'; outputs: Tensor[]; timings: RunTimings }
  /** The run failed; `inputCaused` when the runtime found the input at fault. */
  | { kind: 'failed'; message: string; inputCaused: boolean };

export type WorkerTask =
  | ({ kind: 'infer' } & RunTask)
  /**
   * Several independent runs in one message, run one after the other: requests that wait for the
   * same instance cross the thread boundary together instead of one message each way apiece.
   * `progress` (shared with the main thread) holds the index of the run in progress and when it
   * began (ms after `startedAt`), so the execution timeout bounds each run, not the group.
   */
  | { kind: 'infer-each'; runs: RunTask[]; progress: Int32Array; startedAt: number }
  /** The same, its runs in the compact form of wire.ts. */
  | { kind: 'infer-packed'; group: PackedGroup; progress: Int32Array; startedAt: number }
  | { kind: 'describe' }
  /** Applies the nice value wanted now (every task does first) and reports this thread's. */
  | { kind: 'priority' }
  | { kind: 'close' };

export type WorkerReply =
  | RunOutcome
  | { kind: 'results'; outcomes: RunOutcome[] }
  /** The outcomes of a group in the compact form of wire.ts. */
  | { kind: 'results-packed'; group: PackedGroup }
  | { kind: 'describe'; inputs: TensorMetadata[]; outputs: TensorMetadata[]; threadId: number }
  | { kind: 'priority'; state: PriorityState }
  | { kind: 'closed' };
