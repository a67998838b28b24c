/**
 * Scheduling priority (nice value) of one model worker thread, as its pool asks for it.
 *
 * On Linux the nice value belongs to each thread: setpriority(PRIO_PROCESS, tid) with a thread's
 * id changes that thread only, and threads it starts later (onnxruntime's intra-op pool) inherit
 * it. A worker reads the nice its pool wants from shared memory when it starts (before the
 * model loads) and before every task, and applies it to itself; the operating system then
 * prefers the callers' threads over a lowered version's when cores are contended.
 *
 * A worker only ever lowers its priority. Going back up would need CAP_SYS_NICE (absent from a
 * container's default capabilities), and would not reach the threads the runtime started while
 * lowered; the pool replaces such workers with new ones instead, which the main thread starts
 * at its own priority.
 *
 * Piscina's own `niceIncrement` is not used: it applies once, when a worker starts (every change
 * would mean new workers and a model load), and through an optional native module it skips
 * silently when that is missing. node:os reaches the same system call and reports failures.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Slot in the pool's shared Int32Array holding the nice value wanted. */
export const WANTED_NICE = 0;

export interface PriorityState {
  /** Whether this platform can set a thread's nice (Linux with /proc/thread-self). */
  supported: boolean;
  /** The operating system's id of this thread (0 when unsupported). */
  tid: number;
  /** This thread's nice value now. */
  nice: number;
}

/** The kernel's id of the calling thread, from /proc/thread-self (`<pid>/task/<tid>`); undefined elsewhere. */
export function osThreadId(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps the calling thread at the nice value `wanted[WANTED_NICE]` says. */
export class ThreadPriority {
  private readonly tid: number | undefined = osThreadId();
  private nice: number;

  constructor(private readonly wanted: Int32Array | undefined) {
    this.nice = this.tid === undefined ? 0 : getPriority(this.tid);
  }

  /** Lowers the thread to the wanted nice if that is lower than now; one shared-memory read otherwise. */
  apply(): void {
    if (this.wanted === undefined || this.tid === undefined) return;
    const target = Atomics.load(this.wanted, WANTED_NICE);
    if (target <= this.nice) return;
    try {
      setPriority(this.tid, target);
    } catch {
      // Lowering is always allowed; should the call fail anyway, the thread keeps its priority.
    }
    this.nice = getPriority(this.tid);
  }

  state(): PriorityState {
    return {
      supported: this.tid !== undefined,
      tid: this.tid ?? 0,
      nice: this.nice,
    };
  }
}
