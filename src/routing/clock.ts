/**
 * Time for the traffic controllers: the wall clock in the server, a clock tests move by hand
 * so a canary's hour-long pauses pass in microseconds.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls fn every `ms` until cancelled; the timer never keeps the process alive. */
  every(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(ms, fn) {
    const handle = setInterval(fn, ms);
    handle.unref();
    return { cancel: () => clearInterval(handle) };
  },
};

/** A clock that only moves when told; `advance` fires the due timers in time order. */
export class ManualClock implements Clock {
  private timers: Array<{ id: number; next: number; ms: number; fn: () => void }> = [];
  private ids = 0;

  constructor(private time = 0) {}

  now(): number {
    return this.time;
  }

  every(ms: number, fn: () => void): Timer {
    const id = ++this.ids;
    this.timers.push({ id, next: this.time + ms, ms, fn });
    return { cancel: () => void (this.timers = this.timers.filter((t) => t.id !== id)) };
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.next <= until).sort((a, b) => a.next - b.next)[0];
      if (due === undefined) break;
      this.time = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.time = until;
  }
}
