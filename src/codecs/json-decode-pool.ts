/**
 * Large JSON infer requests are decoded off the event loop, in a small pool of decoder threads:
 * a 3 MB body of 150,000 numbers takes milliseconds to read, time in which the event loop would
 * answer nothing else (health probes, small requests). The typed arrays come back transferred,
 * and from there go to the model's worker: no copy.
 *
 * A body whose length is known (Content-Length) can be decoded while it arrives: the event loop
 * copies each chunk off the socket into shared memory, and the decoder thread reads behind it
 * (`ArrivingBody`), so decoding overlaps receiving instead of following it. A body buffered
 * whole (chunked, compressed, or when no thread is free) is transferred to the thread.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { InferdError, InvalidInputError, type ErrorCode } from '../core/errors.js';
import type { InferenceRequest } from '../core/types.js';

export type JsonDecodeTask =
  | { body: Uint8Array }
  /** A body still arriving: `state` as `ArrivingBody` lays it out. */
  | { arriving: { bytes: Uint8Array; state: Int32Array } };

export type JsonDecodeReply =
  | { request: InferenceRequest }
  | { refused: { code: ErrorCode; message: string } }
  /** The decoder stopped reading an arriving body (it stalled, or was abandoned): decode it whole once it is in. */
  | { incomplete: string };

export interface JsonDecodePoolOptions {
  /** Decoder threads. */
  threads: number;
  /** Bodies waiting for a thread before new ones are refused (503). */
  maxQueue: number;
  /** Nice value the threads lower themselves to when they start (Linux; 0 or absent: unchanged). */
  nice?: number;
}

/** What a decoder thread is started with. */
export interface JsonDecodeWorkerData {
  nice: number;
}

/** Indices into an arriving body's shared state. */
export const ARRIVED = 0;
export const STATUS = 1;
/** How many bytes the reader waits for: the writer wakes it only once they are in. */
export const WANTED = 2;
/** Values of `state[STATUS]`. */
export const RECEIVING = 0;
export const COMPLETE = 1;
export const ABANDONED = 2;
/** Shared memory kept for later arriving bodies, per decoder thread. */
const SPARE_BODIES = 2;

/**
 * A request body of known length, written chunk by chunk into shared memory as it comes off the
 * socket while a decoder thread reads it. `state[ARRIVED]` counts the bytes written (stored after
 * them, so a reader that loads it sees them); a waiting reader stores in `state[WANTED]` how many
 * it waits for and is woken (on ARRIVED) when they are in, or when the body ends or is abandoned.
 */
export class ArrivingBody {
  readonly bytes: Uint8Array;
  private readonly target: Uint8Array;
  readonly state = new Int32Array(new SharedArrayBuffer(12));
  private received = 0;
  private settled = false;
  /** Settles when the whole body is in (resolves) or will not be (rejects). */
  readonly complete: Promise<void>;
  private resolveComplete!: () => void;
  private rejectComplete!: (reason: Error) => void;

  /** `memory`, when given, holds at least `length` bytes, all 0 (see `JsonDecodePool.arrivingBody`). */
  constructor(
    readonly length: number,
    memory: SharedArrayBuffer = new SharedArrayBuffer(length),
  ) {
    this.bytes = new Uint8Array(memory, 0, length);
    this.target = Buffer.from(memory, 0, length);
    this.complete = new Promise<void>((resolve, reject) => {
      this.resolveComplete = resolve;
      this.rejectComplete = reject;
    });
    // Whoever awaits it handles a rejection; a body abandoned before anyone does must not crash the process.
    this.complete.catch(() => undefined);
  }

  /** Bytes written so far: only these can be other than 0. */
  get written(): number {
    return this.received;
  }

  write(chunk: Uint8Array): void {
    if (this.settled) return;
    if (this.received + chunk.byteLength > this.length) {
      this.abandon(new InvalidInputError(`the request body is longer than its Content-Length of ${this.length} bytes`));
      return;
    }
    Buffer.prototype.copy.call(chunk, this.target, this.received);
    this.received += chunk.byteLength;
    Atomics.store(this.state, ARRIVED, this.received);
    // A wake-up is a system call here and a context switch there: only when the reader has what it waits for.
    if (this.received >= Atomics.load(this.state, WANTED)) Atomics.notify(this.state, ARRIVED);
  }

  end(): void {
    if (this.settled) return;
    if (this.received !== this.length) {
      this.abandon(new InvalidInputError(`the request body ended after ${this.received} of its Content-Length of ${this.length} bytes`));
      return;
    }
    this.settled = true;
    Atomics.store(this.state, STATUS, COMPLETE);
    Atomics.notify(this.state, ARRIVED);
    this.resolveComplete();
  }

  /** The body will not come whole (the client went away, or sent more or less than it said). */
  abandon(reason: Error): void {
    if (this.settled) return;
    this.settled = true;
    Atomics.store(this.state, STATUS, ABANDONED);
    Atomics.notify(this.state, ARRIVED);
    this.rejectComplete(reason);
  }
}

function workerEntry(): { filename: string; execArgv: string[] } {
  // Compiled: dist/codecs/json-decode-worker.js. From source (tests, tsx): the .ts file through tsx.
  const self = import.meta.url;
  if (self.endsWith('.ts')) return { filename: fileURLToPath(new URL('./json-decode-worker.ts', self)), execArgv: ['--import', 'tsx'] };
  return { filename: fileURLToPath(new URL('./json-decode-worker.js', self)), execArgv: [] };
}

export class JsonDecodePool {
  private piscina: Piscina | undefined;
  private closed = false;
  /** Bodies handed to the threads and not answered yet. */
  private running = 0;
  /**
   * Arriving bodies not yet in. Each holds shared memory of its full length from its first byte;
   * a client that stalls frees the thread but not that memory, so their number is bounded too.
   */
  private arriving = 0;
  /**
   * Shared memory of finished arriving bodies, zeroed, for the next ones: fresh shared memory
   * costs a page fault per 4 KB on its first write (about 1 ms for a 3 MB body, ten times the
   * copy itself), memory used before does not.
   */
  private readonly spare: SharedArrayBuffer[] = [];

  constructor(private readonly options: JsonDecodePoolOptions) {}

  /**
   * Decodes a JSON infer request body in a decoder thread. The body's buffer is transferred
   * (detached here) when the body owns it whole, copied otherwise.
   */
  async decode(body: Uint8Array): Promise<InferenceRequest> {
    this.admit();
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer ? body : Uint8Array.prototype.slice.call(body);
    return answer(await this.run({ body: owned }, [owned.buffer as ArrayBuffer]));
  }

  /**
   * Whether a body may start decoding now, while it arrives: only when a thread is free. A
   * thread reading behind a body waits for its bytes; queued behind others, the body would be in
   * by the time a thread takes it (and a thread waiting on it could have read a body already in).
   */
  get canDecodeArriving(): boolean {
    return !this.closed && this.running < this.options.threads && this.arriving < 2 * this.options.threads;
  }

  /**
   * Decodes a body while it arrives. Settles once the decoder has read it all; when the decoder
   * gives up on it mid-way (the client stalled), it is decoded whole once it is in.
   */
  async decodeArriving(body: ArrivingBody): Promise<InferenceRequest> {
    this.admit();
    this.arriving++;
    const decoded = this.readArriving(body);
    // Once no thread reads the memory and no chunk can be written to it any more, it is zeroed
    // for a later body (only the bytes written can be other than 0).
    void Promise.allSettled([decoded, body.complete]).then(() => {
      this.arriving--;
      if (this.closed || this.spare.length >= SPARE_BODIES * this.options.threads) return;
      zero(body.bytes, body.written);
      this.spare.push(body.bytes.buffer as SharedArrayBuffer);
    });
    return decoded;
  }

  /** A body of `length` bytes to write as it arrives, in memory used before when there is some. */
  arrivingBody(length: number): ArrivingBody {
    const i = this.spare.findIndex((memory) => memory.byteLength >= length && memory.byteLength <= 2 * length);
    return i < 0 ? new ArrivingBody(length) : new ArrivingBody(length, this.spare.splice(i, 1)[0]);
  }

  private async readArriving(body: ArrivingBody): Promise<InferenceRequest> {
    const reply = await this.run({ arriving: { bytes: body.bytes, state: body.state } });
    if (!('incomplete' in reply)) return answer(reply);
    await body.complete;
    // The shared bytes are read in place: nothing to transfer.
    return answer(await this.run({ body: body.bytes }));
  }

  private async run(task: JsonDecodeTask, transferList?: ArrayBuffer[]): Promise<JsonDecodeReply> {
    this.running++;
    try {
      return (await this.pool().run(task, transferList ? { transferList } : {})) as JsonDecodeReply;
    } finally {
      this.running--;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.piscina?.destroy();
  }

  private admit(): void {
    if (this.closed) throw new InferdError('UNAVAILABLE', 'the server is shutting down');
    if (this.piscina !== undefined && this.piscina.queueSize >= this.options.maxQueue) {
      throw new InferdError('UNAVAILABLE', `${this.options.maxQueue} large JSON bodies are already waiting to be decoded; retry later or send the binary extension`, { retryAfterSeconds: 1 });
    }
  }

  private pool(): Piscina {
    // Threads start with the first large body: most servers never see one.
    return (this.piscina ??= this.start());
  }

  private start(): Piscina {
    const entry = workerEntry();
    return new Piscina({
      filename: entry.filename,
      execArgv: entry.execArgv,
      minThreads: this.options.threads,
      maxThreads: this.options.threads,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      workerData: { nice: this.options.nice ?? 0 } satisfies JsonDecodeWorkerData,
      name: 'default',
    });
  }
}

/** 64 KB of 0, copied over used shared memory: `fill(0)` on shared memory is 7x slower than a copy. */
const ZEROS = new Uint8Array(64 * 1024);

function zero(bytes: Uint8Array, length: number): void {
  for (let at = 0; at < length; at += ZEROS.length) bytes.set(length - at < ZEROS.length ? ZEROS.subarray(0, length - at) : ZEROS, at);
}

function answer(reply: JsonDecodeReply): InferenceRequest {
  if ('refused' in reply) {
    const { code, message } = reply.refused;
    throw code === 'INVALID_ARGUMENT' ? new InvalidInputError(message) : new InferdError(code, message);
  }
  if ('incomplete' in reply) throw new InferdError('INTERNAL', `the decoder thread did not finish the body (${reply.incomplete})`);
  return reply.request;
}
