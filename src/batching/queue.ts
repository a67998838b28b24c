/** A FIFO with O(1) push and shift that reuses its storage (no Array.prototype.shift copies). */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(index = 0): T | undefined {
    return this.items[this.head + index];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Compact once the consumed prefix dominates, keeping memory proportional to the live length.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes the items at the given offsets from the head (ascending), keeping order. */
  removeAt(offsets: readonly number[]): void {
    if (offsets.length === 0) return;
    const keep: (T | undefined)[] = [];
    let k = 0;
    for (let i = this.head; i < this.items.length; i++) {
      if (k < offsets.length && offsets[k] === i - this.head) {
        k++;
        continue;
      }
      keep.push(this.items[i]);
    }
    this.items = keep;
    this.head = 0;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as T;
  }

  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}
