/**
 * A bounded window of served rows for drift, fed row by row by a capture policy.
 *
 * The window closes (tumbles) when it has seen `maxRows` rows or when it is `maxAgeMs` old,
 * whichever comes first; at most `capacity` rows are kept, and once more arrive the kept rows
 * are a uniform reservoir sample of all rows seen in the window (algorithm R), so memory stays
 * bounded whatever the traffic. Adding a row copies its numbers into a preallocated buffer: no
 * allocation, no statistics on the caller's path. A closed window is handed to `onClose` as
 * columns, ready for computeDrift (in a worker thread, see pool.ts).
 */
import { InvalidInputError } from '../core/errors.js';
import type { Table } from './dataset.js';
import { seededRandom } from './profile.js';

export interface DriftWindowOptions {
  /** Names of the input features, in row order. */
  inputs: readonly string[];
  /** Names of the output columns, in the order `add` receives them. */
  outputs?: readonly string[];
  /** Close after this many rows (default 10,000). */
  maxRows?: number;
  /** Close after this long, in ms (default: no time limit). */
  maxAgeMs?: number;
  /** Rows kept in memory (default: maxRows, at most 100,000). */
  capacity?: number;
  /** Called with each closed window that has at least one row. */
  onClose?: (window: ClosedWindow) => void;
  now?: () => number;
  seed?: number;
}

export interface ClosedWindow {
  table: Table;
  /** Rows seen in the window (kept rows are a sample of them when seen > kept). */
  seen: number;
  kept: number;
  startedAt: number;
  endedAt: number;
  reason: 'rows' | 'age' | 'flush';
}

const DEFAULT_MAX_ROWS = 10000;
const MAX_CAPACITY = 100000;

export class DriftWindow {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly width: number;
  readonly maxRows: number;
  readonly maxAgeMs: number;
  readonly capacity: number;
  private buffer: Float64Array;
  private seenRows = 0;
  private started: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly onClose: ((window: ClosedWindow) => void) | undefined;

  constructor(options: DriftWindowOptions) {
    this.inputs = [...options.inputs];
    this.outputs = [...(options.outputs ?? [])];
    if (this.inputs.length === 0) throw new InvalidInputError('a drift window needs at least one input feature');
    this.width = this.inputs.length + this.outputs.length;
    this.maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
    this.maxAgeMs = options.maxAgeMs ?? Infinity;
    if (!(Number.isSafeInteger(this.maxRows) && this.maxRows > 0)) throw new InvalidInputError(`maxRows must be a positive integer, got ${this.maxRows}`);
    if (!(this.maxAgeMs > 0)) throw new InvalidInputError(`maxAgeMs must be positive, got ${this.maxAgeMs}`);
    this.capacity = options.capacity ?? Math.min(this.maxRows, MAX_CAPACITY);
    if (!(Number.isSafeInteger(this.capacity) && this.capacity > 0 && this.capacity <= MAX_CAPACITY)) {
      throw new InvalidInputError(`capacity must be an integer in 1..${MAX_CAPACITY}, got ${this.capacity}`);
    }
    this.buffer = new Float64Array(this.capacity * this.width);
    this.now = options.now ?? Date.now;
    this.started = this.now();
    this.random = seededRandom(options.seed ?? 0x77);
    this.onClose = options.onClose;
  }

  /** Rows seen since the window opened. */
  get seen(): number {
    return this.seenRows;
  }

  /** Rows held (≤ capacity). */
  get kept(): number {
    return Math.min(this.seenRows, this.capacity);
  }

  /**
   * Adds one served row: its input features and, optionally, its outputs (a label, a score).
   * Returns the closed window when this row closed one.
   */
  add(inputs: ArrayLike<number>, outputs?: ArrayLike<number>): ClosedWindow | undefined {
    const closedByAge = this.maxAgeMs !== Infinity && this.now() - this.started >= this.maxAgeMs ? this.close('age') : undefined;
    if (inputs.length !== this.inputs.length) throw new InvalidInputError(`a drift window row needs ${this.inputs.length} input values, got ${inputs.length}`);
    if (outputs !== undefined && outputs.length !== this.outputs.length) throw new InvalidInputError(`a drift window row needs ${this.outputs.length} output values, got ${outputs.length}`);
    let slot = this.seenRows;
    if (slot >= this.capacity) {
      slot = Math.floor(this.random() * (this.seenRows + 1));
      if (slot >= this.capacity) slot = -1;
    }
    if (slot >= 0) {
      const base = slot * this.width;
      for (let i = 0; i < inputs.length; i++) this.buffer[base + i] = Number(inputs[i]);
      const o = this.inputs.length;
      for (let i = 0; i < this.outputs.length; i++) this.buffer[base + o + i] = outputs === undefined ? Number.NaN : Number(outputs[i]);
    }
    this.seenRows++;
    const closedByRows = this.seenRows >= this.maxRows ? this.close('rows') : undefined;
    return closedByRows ?? closedByAge;
  }

  /**
   * Adds a batch laid out row-major (rows × inputs.length values, and rows × outputs.length
   * outputs), as a batched tensor's data is.
   */
  addBatch(inputs: ArrayLike<number>, outputs?: ArrayLike<number>): ClosedWindow[] {
    const rows = inputs.length / this.inputs.length;
    if (!Number.isInteger(rows)) throw new InvalidInputError(`a batch of ${inputs.length} values is not a whole number of ${this.inputs.length}-feature rows`);
    if (outputs !== undefined && outputs.length !== rows * this.outputs.length) throw new InvalidInputError(`a batch of ${rows} rows needs ${rows * this.outputs.length} output values, got ${outputs.length}`);
    const closed: ClosedWindow[] = [];
    const ni = this.inputs.length;
    const no = this.outputs.length;
    const isTyped = (a: ArrayLike<number>): a is Float32Array | Float64Array => ArrayBuffer.isView(a);
    for (let r = 0; r < rows; r++) {
      const row = isTyped(inputs) ? inputs.subarray(r * ni, (r + 1) * ni) : Array.prototype.slice.call(inputs, r * ni, (r + 1) * ni);
      const out = outputs === undefined ? undefined : isTyped(outputs) ? outputs.subarray(r * no, (r + 1) * no) : Array.prototype.slice.call(outputs, r * no, (r + 1) * no);
      const c = this.add(row, out);
      if (c) closed.push(c);
    }
    return closed;
  }

  /** Closes the window when its time is up (call from a timer when traffic may stop). */
  tick(): ClosedWindow | undefined {
    if (this.maxAgeMs !== Infinity && this.now() - this.started >= this.maxAgeMs) return this.close('age');
    return undefined;
  }

  /** Closes the window now. */
  flush(): ClosedWindow | undefined {
    return this.close('flush');
  }

  private close(reason: ClosedWindow['reason']): ClosedWindow | undefined {
    const kept = this.kept;
    const seen = this.seenRows;
    const startedAt = this.started;
    const endedAt = this.now();
    const data = this.buffer;
    this.buffer = new Float64Array(this.capacity * this.width);
    this.seenRows = 0;
    this.started = endedAt;
    if (seen === 0) return undefined;
    const names = [...this.inputs, ...this.outputs];
    const columns = names.map((name, c) => {
      const values = new Float64Array(kept);
      for (let r = 0; r < kept; r++) values[r] = data[r * this.width + c]!;
      return { name, kind: 'numeric' as const, values };
    });
    const window: ClosedWindow = { table: { rows: kept, columns }, seen, kept, startedAt, endedAt, reason };
    this.onClose?.(window);
    return window;
  }
}
