/**
 * Capture for drift: after the model answers, the request's feature rows and the response's
 * outputs go to the served version's drift window, off the request path.
 *
 * The hand-off is a bounded queue drained on later turns of the event loop in short slices, so a
 * request never waits for drift. The only work on the request path is choosing whether to take
 * the request (sampling, room in the queue) and copying its feature values (the hand-off to a
 * worker thread may move the request's buffer). A request that finds the queue full is not
 * captured and the drop is counted; capture errors are counted too and never reach the caller.
 */
import type { InferenceRequest, InferenceResponse, Tensor } from '../../core/types.js';
import type { ModelVersion } from '../../models/model-version.js';
import type { NextInfer, PipelineContext, Policy } from '../types.js';

export type CaptureDropReason = 'queue_full' | 'unreadable';

/** Where one served version's captured traffic goes (its drift monitor). */
export interface CaptureTarget {
  /** The input whose rows the drift profile describes. */
  readonly input: string;
  /** Values per row of that input. */
  readonly width: number;
  /** Share of requests captured, in (0, 1]. */
  readonly sampleRate: number;
  /** Takes one captured request; called off the request path. May throw (counted as unreadable). */
  observe(input: Tensor, outputs: readonly Tensor[]): void;
  dropped(reason: CaptureDropReason): void;
}

export interface CaptureTargets {
  /** The capture target of a served version, or undefined when it has none (yet). */
  targetFor(version: ModelVersion): CaptureTarget | undefined;
}

export interface CapturePolicyOptions {
  /** Requests taken and not yet handed over, at most (default 1024). */
  maxPending?: number;
  /** Longest slice of hand-off work per event-loop turn, in ms (default 2). */
  sliceMs?: number;
  random?: () => number;
}

interface Captured {
  target: CaptureTarget;
  input: Tensor;
  outputs: readonly Tensor[];
}

export class CapturePolicy implements Policy {
  readonly name = 'capture';
  private readonly maxPending: number;
  private readonly sliceMs: number;
  private readonly random: () => number;
  /** Taken requests: answered ones in `queue`, plus those still running. */
  private reserved = 0;
  private queue: Captured[] = [];
  private head = 0;
  private scheduled = false;
  private closed = false;

  constructor(
    private readonly targets: CaptureTargets,
    options: CapturePolicyOptions = {},
  ) {
    this.maxPending = options.maxPending ?? 1024;
    this.sliceMs = options.sliceMs ?? 2;
    this.random = options.random ?? Math.random;
  }

  /** Captured requests not yet handed over (answered or still running). */
  get pending(): number {
    return this.reserved;
  }

  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const taken = this.take(ctx, request);
    if (!taken) return next(ctx, request);
    return next(ctx, request).then(
      (response) => {
        this.enqueue(taken, response.outputs);
        return response;
      },
      (error: unknown) => {
        this.reserved--;
        throw error;
      },
    );
  }

  /** Stops capturing; what is queued is dropped. */
  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
  }

  private take(ctx: PipelineContext, request: InferenceRequest): { target: CaptureTarget; input: Tensor } | undefined {
    if (this.closed || !ctx.served) return undefined;
    try {
      const target = this.targets.targetFor(ctx.served);
      if (!target) return undefined;
      if (target.sampleRate < 1 && this.random() >= target.sampleRate) return undefined;
      if (this.reserved >= this.maxPending) {
        target.dropped('queue_full');
        return undefined;
      }
      const tensor = request.inputs.find((t) => t.name === target.input);
      const data = tensor?.data;
      if (!tensor || data === undefined || Array.isArray(data) || !ArrayBuffer.isView(data) || data.length === 0 || data.length % target.width !== 0) {
        target.dropped('unreadable');
        return undefined;
      }
      this.reserved++;
      // A copy: the request's buffer may be moved to a worker thread.
      return { target, input: { name: tensor.name, datatype: tensor.datatype, shape: [...tensor.shape], data: data.slice() } };
    } catch {
      return undefined;
    }
  }

  private enqueue(taken: { target: CaptureTarget; input: Tensor }, outputs: readonly Tensor[]): void {
    if (this.closed) {
      this.reserved--;
      return;
    }
    this.queue.push({ target: taken.target, input: taken.input, outputs });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    const until = performance.now() + this.sliceMs;
    while (this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as Captured;
      this.head++;
      this.reserved--;
      try {
        item.target.observe(item.input, item.outputs);
      } catch {
        try {
          item.target.dropped('unreadable');
        } catch {
          // counting must not stop the drain
        }
      }
      if (performance.now() >= until) break;
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      if (this.head > 1024) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }
}
