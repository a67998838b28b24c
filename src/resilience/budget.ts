/**
 * A retry budget: retries may add at most `ratio` of the requests seen over the last window,
 * plus `minPerSecond` so a quiet model can still retry. In an outage every request fails, and
 * without a budget each would be sent `1 + max_attempts` times; with one, upstream load stays
 * within (1 + ratio) of the offered load.
 */
export class RetryBudget {
  private readonly requests: number[];
  private readonly retries: number[];
  private slot = 0;
  private slotStart = 0;

  constructor(
    private readonly ratio: number,
    private readonly minPerSecond: number,
    private readonly windowSeconds = 10,
    private readonly now: () => number = Date.now,
  ) {
    this.requests = new Array<number>(windowSeconds).fill(0);
    this.retries = new Array<number>(windowSeconds).fill(0);
    this.slotStart = Math.floor(now() / 1000);
  }

  /** A first attempt was made. */
  request(): void {
    this.rotate();
    this.requests[this.slot]!++;
  }

  /** Whether one more retry fits the budget now. */
  canRetry(): boolean {
    this.rotate();
    const requests = sum(this.requests);
    const retries = sum(this.retries);
    return retries < this.ratio * requests + this.minPerSecond * this.windowSeconds;
  }

  /** A retry is being made. */
  spend(): void {
    this.rotate();
    this.retries[this.slot]!++;
  }

  private rotate(): void {
    const second = Math.floor(this.now() / 1000);
    const elapsed = second - this.slotStart;
    if (elapsed <= 0) return;
    for (let i = 1; i <= Math.min(elapsed, this.windowSeconds); i++) {
      const s = (this.slot + i) % this.windowSeconds;
      this.requests[s] = 0;
      this.retries[s] = 0;
    }
    this.slot = (this.slot + elapsed) % this.windowSeconds;
    this.slotStart = second;
  }
}

function sum(values: number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
