/**
 * A tensor-aware reader of OIP (V2) JSON infer requests: one pass over the body's bytes that
 * writes the numbers of `data` straight into the tensor's typed array, with no JavaScript array
 * and no string per number in between. The values are exactly those of the general decoder
 * (`parseJsonBody` then `decodeInferRequest`): doubles as JSON.parse reads them, INT64/UINT64
 * exact, parameters with BigInts beyond 2^53.
 *
 * It only reads requests that are well formed. Anything else — a syntax error, a value that
 * does not fit, a duplicate key, a count that does not match the shape — sends the body to the
 * general decoder, so a refusal carries the very message it always had.
 */
import { allocate, datatypeInfo, isDatatype, type Datatype, type TensorData } from '../core/datatypes.js';
import { checkShape, elementCount, fromValues } from '../core/tensor.js';
import type { InferenceRequest, Parameters, RequestedOutput, Tensor } from '../core/types.js';
import { decodeInferRequest, parseJsonBody, parseParameters } from './json.js';
import { scanNumber, scanned } from './json-number.js';

/**
 * A body still arriving (written into shared memory by another thread as it comes off the
 * socket): bytes at or past `waitFor`'s answer may not be there yet and read as 0, a byte no
 * JSON token contains, so reading one can only fail a parse, never change its result.
 */
export interface Arrival {
  /**
   * Blocks until at least min(end, body length) bytes have arrived; returns how many have.
   * Throws when they will not come (the client went away, or stalled): the reader then gives up.
   */
  waitFor(end: number): number;
}

/** Bytes of body the reader asks to have ahead of the number it reads (numbers are shorter). */
const AHEAD = 256;
/** Bytes asked for before the first key and after each list of numbers (the structure around). */
const STRUCTURE = 16 * 1024;

/** Thrown inside the reader when the general decoder must take the body. */
class NotPlain {}
const NOT_PLAIN = new NotPlain();

const encoder = new TextEncoder();
const INTEGER_TEXT = /^-?\d+$/;
/** 2^128 - 2^103: from this magnitude a double rounds to an infinite FP32. */
const FP32_OVERFLOW = 3.4028235677973366e38;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const BACKSLASH = 0x5c;

/**
 * Decodes a JSON infer request body: the single-pass reader first, the general decoder for
 * whatever it does not take (which then throws the request's error, if it has one).
 */
export function decodeJsonInferRequest(body: Uint8Array): InferenceRequest {
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const request = readInferRequest(buffer);
  return request ?? decodeInferRequest(parseJsonBody(buffer));
}

/**
 * The request, or undefined when the body is not a plain well-formed request. With `arrival`,
 * the body may still be arriving: the reader keeps behind it, and gives up (undefined) when it
 * meets a byte not there yet outside a list of numbers, or when `arrival` throws.
 */
export function readInferRequest(body: Buffer, arrival?: Arrival): InferenceRequest | undefined {
  try {
    return new RequestReader(body, arrival).request();
  } catch {
    // NOT_PLAIN, a refusal, or a RangeError (an allocation, a stack too deep): the general
    // decoder reads the body again and is the one to answer.
    return undefined;
  }
}

class RequestReader {
  private pos = 0;
  private readonly n: number;
  private readonly text = (start: number, end: number): string => this.bytes.toString('latin1', start, end);
  /** Bytes known to have arrived: the whole body unless it is still arriving. */
  private available: number;

  constructor(
    private readonly bytes: Buffer,
    private readonly arrival?: Arrival,
  ) {
    this.n = bytes.length;
    this.available = arrival === undefined ? this.n : 0;
  }

  /** Waits for the body up to `end` (only called while it is still arriving). */
  private waitFor(end: number): number {
    return (this.available = this.arrival!.waitFor(end));
  }

  request(): InferenceRequest {
    if (this.available < this.n) this.waitFor(STRUCTURE);
    let inputs: Tensor[] | undefined;
    let id: unknown;
    let parameters: unknown;
    let outputs: unknown;
    let seen = 0;
    this.open(OPEN_OBJECT);
    if (!this.close(CLOSE_OBJECT)) {
      do {
        const key = this.key();
        if (key === 'inputs') {
          seen = once(seen, 1);
          inputs = this.inputs();
        } else if (key === 'id') {
          seen = once(seen, 2);
          id = this.value(0);
        } else if (key === 'parameters') {
          seen = once(seen, 4);
          parameters = this.value(0);
        } else if (key === 'outputs') {
          seen = once(seen, 8);
          outputs = this.value(0);
        } else this.value(0);
      } while (this.next(CLOSE_OBJECT));
    }
    this.skipSpace();
    if (this.pos !== this.n || inputs === undefined || inputs.length === 0) throw NOT_PLAIN;
    const request: InferenceRequest = { inputs };
    if (id !== undefined) {
      if (typeof id !== 'string') throw NOT_PLAIN;
      request.id = id;
    }
    const p = parseParameters(parameters, 'request');
    if (p) request.parameters = p;
    if (outputs !== undefined) request.outputs = requestedOutputs(outputs);
    return request;
  }

  private inputs(): Tensor[] {
    const list: Tensor[] = [];
    this.open(OPEN_LIST);
    if (this.close(CLOSE_LIST)) return list;
    do list.push(this.tensor());
    while (this.next(CLOSE_LIST));
    return list;
  }

  private tensor(): Tensor {
    let name: unknown;
    let datatype: unknown;
    let shapeValue: unknown;
    let parameters: unknown;
    let data: TensorData | undefined;
    let dataAt = -1;
    let seen = 0;
    this.open(OPEN_OBJECT);
    if (!this.close(CLOSE_OBJECT)) {
      do {
        const key = this.key();
        if (key === 'name') {
          seen = once(seen, 1);
          name = this.value(0);
        } else if (key === 'datatype') {
          seen = once(seen, 2);
          datatype = this.value(0);
        } else if (key === 'shape') {
          seen = once(seen, 4);
          shapeValue = this.value(0);
        } else if (key === 'parameters') {
          seen = once(seen, 8);
          parameters = this.value(0);
        } else if (key === 'data') {
          seen = once(seen, 16);
          this.skipSpace();
          if ((seen & 6) === 6) data = this.data(datatype, shapeValue);
          else {
            // The data came before its datatype or shape: read it once they are known.
            dataAt = this.pos;
            this.value(0);
          }
        } else this.value(0);
      } while (this.next(CLOSE_OBJECT));
    }
    if (typeof name !== 'string' || name.length === 0 || (seen & 16) === 0) throw NOT_PLAIN;
    if (data === undefined) {
      const resume = this.pos;
      this.pos = dataAt;
      data = this.data(datatype, shapeValue);
      this.pos = resume;
    }
    const what = `input '${name}'`;
    const tensor: Tensor = { name, datatype: datatype as Datatype, shape: shapeValue as number[], data };
    const p = parseParameters(parameters, what);
    if (p) tensor.parameters = p;
    return tensor;
  }

  /** The `data` value at the cursor, as the typed array of `datatype`, counted against `shape`. */
  private data(datatype: unknown, shapeValue: unknown): TensorData {
    if (!isDatatype(datatype)) throw NOT_PLAIN;
    const shape = checkShape(shapeValue, '');
    for (const dim of shape) if (dim > Number.MAX_SAFE_INTEGER) throw NOT_PLAIN;
    const count = elementCount(shape);
    // Every element takes at least one byte of the body.
    if (count > this.n) throw NOT_PLAIN;
    const sink = new Sink(datatype, count);
    this.skipSpace();
    if (this.bytes[this.pos] !== OPEN_LIST) {
      // A scalar is allowed for a tensor of one element.
      this.element(sink);
    } else if (this.firstIsList()) {
      this.nested(sink, shape, 0);
    } else {
      this.pos++;
      if (!this.close(CLOSE_LIST)) this.list(sink);
    }
    return sink.finish();
  }

  /** Whether the list at the cursor starts with a list. */
  private firstIsList(): boolean {
    let p = this.pos + 1;
    let c = this.bytes[p];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = this.bytes[++p];
    return c === OPEN_LIST;
  }

  /** Nested data: each list as long as its dimension, values only at the last. */
  private nested(sink: Sink, shape: readonly number[], depth: number): void {
    if (depth >= shape.length) throw NOT_PLAIN;
    this.open(OPEN_LIST);
    const expected = shape[depth]!;
    let length = 0;
    if (!this.close(CLOSE_LIST)) {
      if (depth === shape.length - 1) {
        if (this.list(sink) !== expected) throw NOT_PLAIN;
        return;
      }
      do {
        length++;
        {
          this.skipSpace();
          if (this.bytes[this.pos] !== OPEN_LIST) throw NOT_PLAIN;
          this.nested(sink, shape, depth + 1);
        }
      } while (this.next(CLOSE_LIST));
    }
    if (length !== expected) throw NOT_PLAIN;
  }

  /**
   * The elements of a non-empty list of values up to its closing bracket. Plain numbers into an
   * FP32/FP64 array, and integers below 2^53 into an INT64/UINT64 array, take a tight loop;
   * anything else goes element by element.
   */
  private list(sink: Sink): number {
    const bytes = this.bytes;
    const floats = sink.floats;
    const words = sink.words;
    let count = 0;
    if (floats !== undefined || words !== undefined) {
      const limit = sink.limit;
      const float32 = floats instanceof Float32Array;
      const unsigned = sink.unsigned;
      const n = this.n;
      let available = this.available;
      let p = this.pos;
      let i = sink.at;
      for (;;) {
        // A body still arriving: stay behind it (one comparison per number otherwise).
        if (p + AHEAD > available && available < n) available = this.waitFor(p + AHEAD);
        let c = bytes[p];
        while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = bytes[++p];
        if (c !== 0x2d && !(c! >= 0x30 && c! <= 0x39)) break;
        const x = scanNumber(bytes, p, this.text, float32);
        if (scanned.end >= available && available < n) {
          // The literal ran up to bytes not there yet (longer than AHEAD): read it again once they are.
          available = this.waitFor(scanned.end + 1 + AHEAD);
          continue;
        }
        if (scanned.end < 0 || i >= sink.count) throw NOT_PLAIN;
        if (floats !== undefined) {
          if (x >= limit || x <= -limit) throw NOT_PLAIN;
          floats[i++] = x;
        } else if (Number.isSafeInteger(x) && (x >= 0 || !unsigned)) {
          // Two 32-bit words, little-endian: no BigInt per element.
          const high = Math.floor(x / 4294967296);
          words![2 * i] = x - high * 4294967296;
          words![2 * i + 1] = high;
          i++;
        } else {
          sink.at = i;
          sink.number(x, scanned.integer && !Number.isSafeInteger(x) ? this.text(p, scanned.end) : undefined);
          i = sink.at;
        }
        count++;
        p = scanned.end;
        c = bytes[p];
        if (c !== COMMA && c !== CLOSE_LIST) {
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = bytes[++p];
        }
        p++;
        if (c === COMMA) continue;
        if (c !== CLOSE_LIST) throw NOT_PLAIN;
        this.pos = p;
        sink.at = i;
        this.available = available;
        // The structure after the list (the next list, the tensor's other keys) is read as it is.
        if (p + STRUCTURE > available && available < n) this.waitFor(p + STRUCTURE);
        return count;
      }
      this.pos = p;
      sink.at = i;
      this.available = available;
    }
    do {
      if (this.pos + AHEAD > this.available && this.available < this.n) this.waitFor(this.pos + AHEAD);
      this.element(sink);
      count++;
    } while (this.next(CLOSE_LIST));
    if (this.pos + STRUCTURE > this.available && this.available < this.n) this.waitFor(this.pos + STRUCTURE);
    return count;
  }

  /** One element of data (a number, a string, a boolean), stored in the sink. */
  private element(sink: Sink): void {
    this.skipSpace();
    const c = this.bytes[this.pos];
    if (c === QUOTE) sink.string(this.string());
    else if (c === 0x74 && this.word('true')) sink.boolean(true);
    else if (c === 0x66 && this.word('false')) sink.boolean(false);
    else {
      const start = this.pos;
      const x = scanNumber(this.bytes, start, this.text);
      if (scanned.end < 0) throw NOT_PLAIN;
      this.pos = scanned.end;
      // The digits of an integer beyond 2^53 matter to INT64/UINT64 only, and only then is a string made.
      sink.number(x, scanned.integer && !Number.isSafeInteger(x) ? this.text(start, scanned.end) : undefined);
    }
  }

  /**
   * A general JSON value as the general decoder sees it: numbers as JSON.parse reads them,
   * integer literals beyond 2^53 as exact BigInts.
   */
  private value(depth: number): unknown {
    if (depth > 64) throw NOT_PLAIN;
    this.skipSpace();
    const c = this.bytes[this.pos];
    if (c === QUOTE) return this.string();
    if (c === OPEN_OBJECT) {
      const object: Record<string, unknown> = {};
      this.pos++;
      if (this.close(CLOSE_OBJECT)) return object;
      do {
        const key = this.key();
        if (key === '__proto__' || Object.hasOwn(object, key)) throw NOT_PLAIN;
        object[key] = this.value(depth + 1);
      } while (this.next(CLOSE_OBJECT));
      return object;
    }
    if (c === OPEN_LIST) {
      const list: unknown[] = [];
      this.pos++;
      if (this.close(CLOSE_LIST)) return list;
      do list.push(this.value(depth + 1));
      while (this.next(CLOSE_LIST));
      return list;
    }
    if (c === 0x74 && this.word('true')) return true;
    if (c === 0x66 && this.word('false')) return false;
    if (c === 0x6e && this.word('null')) return null;
    const start = this.pos;
    const x = scanNumber(this.bytes, start, this.text);
    if (scanned.end < 0) throw NOT_PLAIN;
    this.pos = scanned.end;
    if (scanned.integer && !Number.isSafeInteger(x)) return BigInt(this.text(start, scanned.end));
    return x;
  }

  private word(w: string): boolean {
    for (let i = 0; i < w.length; i++) if (this.bytes[this.pos + i] !== w.charCodeAt(i)) return false;
    this.pos += w.length;
    return true;
  }

  private key(): string {
    this.skipSpace();
    if (this.bytes[this.pos] !== QUOTE) throw NOT_PLAIN;
    const key = this.string();
    this.skipSpace();
    if (this.bytes[this.pos] !== COLON) throw NOT_PLAIN;
    this.pos++;
    return key;
  }

  /** The string at the cursor (on its opening quote). */
  private string(): string {
    const bytes = this.bytes;
    const start = ++this.pos;
    let p = start;
    let ascii = true;
    let escaped = false;
    for (;;) {
      if (p >= this.n) throw NOT_PLAIN;
      const c = bytes[p]!;
      if (c === QUOTE) break;
      if (c < 0x20) throw NOT_PLAIN;
      if (c === BACKSLASH) {
        escaped = true;
        p++;
      } else if (c >= 0x80) ascii = false;
      p++;
    }
    this.pos = p + 1;
    if (escaped) {
      try {
        return JSON.parse(bytes.toString('utf8', start - 1, p + 1)) as string;
      } catch {
        throw NOT_PLAIN;
      }
    }
    return ascii ? bytes.toString('latin1', start, p) : bytes.toString('utf8', start, p);
  }

  private skipSpace(): void {
    const bytes = this.bytes;
    let p = this.pos;
    let c = bytes[p];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = bytes[++p];
    this.pos = p;
  }

  private open(bracket: number): void {
    this.skipSpace();
    if (this.bytes[this.pos] !== bracket) throw NOT_PLAIN;
    this.pos++;
  }

  /** Consumes `bracket` if it comes next (an empty list or object). */
  private close(bracket: number): boolean {
    this.skipSpace();
    if (this.bytes[this.pos] !== bracket) return false;
    this.pos++;
    return true;
  }

  /** After an element: true on a comma (another follows), false on the closing bracket. */
  private next(bracket: number): boolean {
    let c = this.bytes[this.pos];
    if (c !== COMMA && c !== bracket) {
      this.skipSpace();
      c = this.bytes[this.pos];
    }
    this.pos++;
    if (c === COMMA) return true;
    if (c === bracket) return false;
    throw NOT_PLAIN;
  }
}

/** Records a key; a key seen twice (where the last would win) is left to the general decoder. */
function once(seen: number, bit: number): number {
  if ((seen & bit) !== 0) throw NOT_PLAIN;
  return seen | bit;
}

function requestedOutputs(value: unknown): RequestedOutput[] {
  if (!Array.isArray(value)) throw NOT_PLAIN;
  return value.map((o: unknown): RequestedOutput => {
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw NOT_PLAIN;
    const { name, parameters } = o as { name?: unknown; parameters?: unknown };
    if (typeof name !== 'string') throw NOT_PLAIN;
    const p: Parameters | undefined = parseParameters(parameters, `output '${name}'`);
    return p ? { name, parameters: p } : { name };
  });
}

const enum Kind {
  Float,
  Integer,
  BigInteger,
  /** BOOL, BYTES, FP16, BF16: values gathered, then converted by the general conversion. */
  Values,
}

/** Where elements go, checked as the general conversion checks them; any refusal is NOT_PLAIN. */
class Sink {
  private readonly kind: Kind;
  private readonly out: TensorData | unknown[];
  /** Elements stored so far. */
  at = 0;
  /** The FP32/FP64 array, for the list reader's tight loop. */
  readonly floats: Float32Array | Float64Array | undefined;
  /** Magnitude from which a number does not fit the float type. */
  readonly limit: number;
  /** The INT64/UINT64 array as 32-bit words, for the list reader's tight loop (little-endian machines). */
  readonly words: Int32Array | undefined;
  readonly unsigned: boolean;
  private readonly min: number;
  private readonly max: number;
  private readonly bigMin: bigint;
  private readonly bigMax: bigint;

  constructor(
    private readonly datatype: Datatype,
    readonly count: number,
  ) {
    const info = datatypeInfo(datatype);
    this.min = 0;
    this.max = 0;
    this.bigMin = 0n;
    this.bigMax = 0n;
    this.limit = Infinity;
    if (datatype === 'FP32' || datatype === 'FP64') {
      this.kind = Kind.Float;
      this.limit = datatype === 'FP32' ? FP32_OVERFLOW : Infinity;
    } else if (datatype === 'BOOL' || datatype === 'BYTES' || info.float) {
      this.kind = Kind.Values;
    } else if (info.bigint) {
      this.kind = Kind.BigInteger;
      this.bigMin = info.min as bigint;
      this.bigMax = info.max as bigint;
    } else {
      this.kind = Kind.Integer;
      this.min = info.min as number;
      this.max = info.max as number;
    }
    this.out = this.kind === Kind.Values ? [] : allocate(datatype, count);
    this.floats = this.kind === Kind.Float ? (this.out as Float32Array) : undefined;
    const big = this.out as BigInt64Array;
    this.words = this.kind === Kind.BigInteger && LITTLE_ENDIAN ? new Int32Array(big.buffer, big.byteOffset, big.length * 2) : undefined;
    this.unsigned = datatype === 'UINT64';
  }

  number(x: number, integerText: string | undefined): void {
    const i = this.at++;
    if (i >= this.count) throw NOT_PLAIN;
    switch (this.kind) {
      case Kind.Float:
        if (x >= this.limit || x <= -this.limit) throw NOT_PLAIN;
        (this.out as Float32Array)[i] = x;
        return;
      case Kind.Integer:
        if (!Number.isInteger(x) || x < this.min || x > this.max) throw NOT_PLAIN;
        (this.out as Int32Array)[i] = x;
        return;
      case Kind.BigInteger: {
        if (!Number.isInteger(x)) throw NOT_PLAIN;
        const b = integerText !== undefined ? BigInt(integerText) : BigInt(x);
        this.bigInteger(i, b);
        return;
      }
      default:
        // An integer literal beyond 2^53 is a BigInt to the general decoder; as a BOOL it is
        // refused by both, as an FP16/BF16 value both read the nearest double.
        if (this.datatype === 'BYTES') throw NOT_PLAIN;
        (this.out as unknown[]).push(x);
    }
  }

  string(s: string): void {
    const i = this.at++;
    if (i >= this.count) throw NOT_PLAIN;
    switch (this.kind) {
      case Kind.Float: {
        let x: number;
        if (s === 'NaN' || s === 'nan') x = NaN;
        else if (s === 'Infinity' || s === 'inf') x = Infinity;
        else if (s === '-Infinity' || s === '-inf') x = -Infinity;
        else throw NOT_PLAIN;
        (this.out as Float32Array)[i] = x;
        return;
      }
      case Kind.BigInteger:
        if (!INTEGER_TEXT.test(s)) throw NOT_PLAIN;
        this.bigInteger(i, BigInt(s));
        return;
      case Kind.Values:
        if (this.datatype === 'BOOL') throw NOT_PLAIN;
        (this.out as unknown[]).push(s);
        return;
      default:
        throw NOT_PLAIN;
    }
  }

  boolean(b: boolean): void {
    if (this.at++ >= this.count || this.datatype !== 'BOOL') throw NOT_PLAIN;
    (this.out as unknown[]).push(b);
  }

  private bigInteger(i: number, b: bigint): void {
    if (b < this.bigMin || b > this.bigMax) throw NOT_PLAIN;
    (this.out as BigInt64Array)[i] = b;
  }

  finish(): TensorData {
    if (this.at !== this.count) throw NOT_PLAIN;
    if (this.kind !== Kind.Values) return this.out as TensorData;
    const values = this.out as unknown[];
    if (this.datatype === 'BYTES') {
      const list: Uint8Array[] = new Array(values.length);
      for (let i = 0; i < values.length; i++) list[i] = encoder.encode(values[i] as string);
      return list;
    }
    return fromValues(this.datatype, values, '', { fromText: true });
  }
}
