/** Messages between the main thread and a model worker. Plain data and transferable buffers. */
import type { Tensor, TensorMetadata } from '../core/types.js';
import type { RunTimings } from '../runtimes/types.js';

export type WorkerTask =
  | { kind: 'infer'; inputs: Tensor[]; outputs: string[]; requestIds: string[] }
  | { kind: 'describe' }
  | { kind: 'close' };

export type WorkerReply =
  | { kind: 'result'; outputs: Tensor[]; timings: RunTimings }
  | { kind: 'describe'; inputs: TensorMetadata[]; outputs: TensorMetadata[]; threadId: number }
  | { kind: 'closed' }
  /** The run failed; `inputCaused` when the runtime found the input at fault. */
  | { kind: 'failed'; message: string; inputCaused: boolean };
