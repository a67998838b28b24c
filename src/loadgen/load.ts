/**
 * Load drivers: closed loop (N requests always in flight) and open loop (requests leave on a
 * Poisson or constant schedule whatever the server does). Completions are counted into the
 * current measurement window, which the runner swaps at each window boundary.
 */
import { LatencyHistogram } from './histogram.js';
import { rng } from './inputs.js';
import type { RequestOutcome, Transport } from './types.js';

/** A send that leaves this much after its scheduled time counts as late (timers tick in whole ms). */
export const LATE_THRESHOLD_MS = 2;

/** Pause of a closed loop after a connection-level failure. */
const CONNECTION_RETRY_MS = 10;

export class WindowCounters {
  readonly latency = new LatencyHistogram();
  successes = 0;
  sent = 0;
  readonly errors = new Map<string, number>();
  readonly errorSamples = new Map<string, string>();
  lateSends = 0;
  maxLateMs = 0;

  get errorCount(): number {
    let n = 0;
    for (const v of this.errors.values()) n += v;
    return n;
  }

  record(startMs: number, endMs: number, o: RequestOutcome): void {
    if (o.ok) {
      this.successes++;
      // Failed requests stay out of the latency figures: a fast 503 is no latency win.
      this.latency.record((endMs - startMs) * 1000);
    } else {
      const key = o.errorKey ?? 'error';
      this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
      if (!this.errorSamples.has(key) && o.errorMessage) this.errorSamples.set(key, o.errorMessage);
    }
  }
}

export abstract class Driver {
  protected running = false;
  protected counters = new WindowCounters();
  protected next = 0;
  inFlight = 0;

  constructor(protected readonly transport: Transport) {}

  /** Counters since the last swap (still being filled). */
  get current(): WindowCounters {
    return this.counters;
  }

  /** Closes the current window and opens a new one. */
  swap(): WindowCounters {
    const done = this.counters;
    this.counters = new WindowCounters();
    return done;
  }

  abstract start(): void;

  stop(): void {
    this.running = false;
  }

  /** Sends one request; `after` runs on completion while the driver is running. */
  protected fire(after?: (o: RequestOutcome) => void): void {
    const start = performance.now();
    this.counters.sent++;
    this.inFlight++;
    let sync = true;
    this.transport.send(this.next++, (o) => {
      this.inFlight--;
      if (!this.running) return;
      this.counters.record(start, performance.now(), o);
      if (after) {
        // A transport that fails at once must not turn the loop into deep recursion.
        if (sync) setImmediate(after, o);
        else after(o);
      }
    });
    sync = false;
  }
}

/** `concurrency` independent loops, each sending its next request when the previous one completes. */
export class ClosedLoopDriver extends Driver {
  constructor(
    transport: Transport,
    private readonly concurrency: number,
  ) {
    super(transport);
  }

  start(): void {
    this.running = true;
    // Spread loops over the payloads so that concurrent requests differ.
    for (let i = 0; i < this.concurrency; i++) {
      const loop = (o?: RequestOutcome): void => {
        if (!this.running) return;
        // A refused or dropped connection fails in microseconds: pause rather than spin on it.
        if (o?.errorKey === 'connection') setTimeout(() => this.running && this.fire(loop), CONNECTION_RETRY_MS);
        else this.fire(loop);
      };
      loop();
    }
  }
}

export type Distribution = 'poisson' | 'constant';

/**
 * Requests at `rate` per second on a schedule fixed in advance; a send is never held back by
 * outstanding requests (up to the transport's connection limit, past which it queues).
 */
export class OpenLoopDriver extends Driver {
  private timer: NodeJS.Timeout | null = null;
  private readonly interval: () => number;

  constructor(
    transport: Transport,
    private readonly rate: number,
    distribution: Distribution,
    seed: number,
  ) {
    super(transport);
    const mean = 1000 / rate;
    const next = rng(seed);
    this.interval = distribution === 'constant' ? () => mean : () => -Math.log(1 - next()) * mean;
  }

  start(): void {
    this.running = true;
    let due = performance.now();
    const tick = (): void => {
      this.timer = null;
      if (!this.running) return;
      const now = performance.now();
      while (due <= now) {
        const late = now - due;
        if (late > LATE_THRESHOLD_MS) this.counters.lateSends++;
        if (late > this.counters.maxLateMs) this.counters.maxLateMs = late;
        this.fire();
        due += this.interval();
      }
      // Timers have 1 ms granularity: wake a little early rather than late, never busy-wait.
      this.timer = setTimeout(tick, Math.max(0, Math.floor(due - performance.now())));
    };
    tick();
  }

  override stop(): void {
    super.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
